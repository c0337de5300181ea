"""The monitoring store: sealed Parquet files in the artifacts of MLflow runs.

Each model has an experiment ``maas-monitor/{name}``; in it, one run per version
(tag ``maas.stream`` = ``version:N``) holds that version's ``predictions`` and
``ops`` files, and one run (``labels``) the model's labels. Files are partitioned
by day (``predictions/day=2026-12-04/<id>.parquet.sealed``) and never change
once written, so a reader downloads each one once and keeps it.

Files move through each run's artifact repository itself (the MLflow server's
artifact routes), looked up once per run. The client's run-level calls cost three
more requests for each: ``MlflowClient.list_artifacts`` fetches the run, and (MLflow
3) fetches it again and searches the experiment's logged models, every time. Of the
30,600 requests a run of the test suite made to MLflow, 12,600 were those lookups.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import pyarrow as pa
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from maas_ray.monitoring.crypto import SealError, load_key, seal, unseal
from maas_ray.monitoring.records import conform, empty, from_sealed, to_sealed
from maas_ray.settings import Settings

logger = logging.getLogger(__name__)
EXPERIMENT_PREFIX = "maas-monitor/"
STREAM_TAG = "maas.stream"
LABELS_STREAM = "labels"
SUFFIX = ".parquet.sealed"
CACHE_FILES = 20_000  # files a reader keeps decoded (they never change)
STREAMS_TTL_S = 5.0  # how long a model's list of runs (and a missing blob) is trusted


def experiment_name(model: str) -> str:
    """The MLflow experiment of a model's monitoring."""
    return EXPERIMENT_PREFIX + model


def version_stream(version: str) -> str:
    return f"version:{version}"


class MonitorStore:
    """Reads and writes one platform's monitoring files through the MLflow server."""

    def __init__(self, tracking_uri: str, settings: Settings | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        self._repos: dict[str, ArtifactRepository] = {}  # run id -> its artifacts
        self.key = load_key(settings or Settings())
        self._runs: dict[tuple[str, str], str] = {}
        self._files: OrderedDict[str, pa.Table] = OrderedDict()
        self._lock = threading.Lock()
        self._blobs: dict[tuple[str, str], bytes] = {}
        self._missing: dict[tuple[str, str], float] = {}  # blobs looked for, not there
        self._streams: dict[str, tuple[float, dict[str, list[str]]]] = {}

    # -- runs ----------------------------------------------------------------------
    def experiment_id(self, model: str, create: bool = True) -> str | None:
        """The id of ``model``'s monitoring experiment (made on first write)."""
        name = experiment_name(model)
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        if not create:
            return None
        try:
            return str(self.client.create_experiment(name, tags={"maas.model": model}))
        except MlflowException:
            found = self.client.get_experiment_by_name(name)  # another replica made it
            if found is None:
                raise
            return str(found.experiment_id)

    def run_id(self, model: str, stream: str) -> str:
        """The run that holds ``stream``'s files (made on first write)."""
        cached = self._runs.get((model, stream))
        if cached is not None:
            return cached
        experiment = self.experiment_id(model)
        assert experiment is not None
        runs = self.client.search_runs(
            [experiment], filter_string=f"tags.`{STREAM_TAG}` = '{stream}'", max_results=1
        )
        if runs:
            run_id = runs[0].info.run_id
        else:
            title = stream.replace("version:", "version ")
            run = self.client.create_run(
                experiment, run_name=title, tags={STREAM_TAG: stream, "maas.model": model}
            )
            run_id = run.info.run_id
        self._runs[(model, stream)] = run_id
        self._streams.pop(model, None)  # a run this store may have just made: read anew
        return run_id

    def _repo(self, run_id: str) -> ArtifactRepository:
        """The artifact repository of ``run_id`` (its root never changes)."""
        repo = self._repos.get(run_id)
        if repo is None:
            uri = self.client.get_run(run_id).info.artifact_uri
            repo = get_artifact_repository(uri, self.tracking_uri, self.tracking_uri)
            self._repos[run_id] = repo
        return repo

    def streams(self, model: str) -> dict[str, list[str]]:
        """Every stream of ``model`` and its run ids (two replicas may each make one).

        Read again after STREAMS_TTL_S: a stream's run is made once, by the first write
        of a new version.
        """
        cached = self._streams.get(model)
        if cached is not None and time.monotonic() - cached[0] < STREAMS_TTL_S:
            return cached[1]
        out: dict[str, list[str]] = {}
        experiment = self.experiment_id(model, create=False)
        if experiment is not None:
            for run in self.client.search_runs([experiment], max_results=10_000):
                stream = run.data.tags.get(STREAM_TAG)
                if stream:
                    out.setdefault(stream, []).append(run.info.run_id)
        self._streams[model] = (time.monotonic(), out)
        return out

    # -- files ----------------------------------------------------------------------
    def write(self, model: str, stream: str, kind: str, data: pa.Table) -> str:
        """Seal ``data`` and add it as a new file of ``kind``; returns its artifact path."""
        run_id = self.run_id(model, stream)
        day = time.strftime("%Y-%m-%d", time.gmtime())
        folder = f"{kind}/day={day}"
        name = f"{time.time():.3f}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        with tempfile.TemporaryDirectory(prefix="maas-monitor-") as tmp:
            local = Path(tmp) / name
            local.write_bytes(to_sealed(self.key, data))
            self._repo(run_id).log_artifact(str(local), folder)
        return f"{folder}/{name}"

    def write_blob(self, model: str, stream: str, name: str, data: bytes) -> None:
        """Seal ``data`` as the file ``blobs/<name>`` of ``stream`` (replacing it)."""
        run_id = self.run_id(model, stream)
        with tempfile.TemporaryDirectory(prefix="maas-monitor-") as tmp:
            local = Path(tmp) / (name + ".sealed")
            local.write_bytes(seal(self.key, data))
            self._repo(run_id).log_artifact(str(local), "blobs")
        self._blobs[(run_id, name)] = data

    def read_blob(self, run_ids: list[str], name: str) -> bytes | None:
        """The first of ``run_ids`` that holds ``blobs/<name>``, opened; None: none does."""
        for run_id in run_ids:
            if (run_id, name) in self._blobs:
                return self._blobs[(run_id, name)]
            missed = self._missing.get((run_id, name))
            if missed is not None and time.monotonic() - missed < STREAMS_TTL_S:
                continue
            listed = {i.path for i in self._repo(run_id).list_artifacts("blobs")}
            path = f"blobs/{name}.sealed"
            if path not in listed:
                self._missing[(run_id, name)] = time.monotonic()
                continue
            with tempfile.TemporaryDirectory(prefix="maas-monitor-") as tmp:
                local = self._repo(run_id).download_artifacts(path, tmp)
                data = unseal(self.key, Path(local).read_bytes())
            self._blobs[(run_id, name)] = data
            return data
        return None

    def read(
        self, model: str, kind: str, streams: dict[str, list[str]] | None = None
    ) -> dict[str, pa.Table]:
        """Every file of ``kind``, per stream, as one table each (empty if none)."""
        streams = self.streams(model) if streams is None else streams
        out: dict[str, pa.Table] = {}
        for stream, run_ids in streams.items():
            parts = [t for run_id in run_ids for t in self._read_run(run_id, kind)]
            out[stream] = pa.concat_tables(parts) if parts else empty(kind)
        return out

    def _read_run(self, run_id: str, kind: str) -> list[pa.Table]:
        tables = []
        repo = self._repo(run_id)
        for day in repo.list_artifacts(kind):
            if not day.is_dir:
                continue
            for info in repo.list_artifacts(day.path):
                if info.is_dir or not info.path.endswith(SUFFIX):
                    continue
                data = self._file(run_id, info.path)
                if data is not None:
                    tables.append(conform(kind, data))
        return tables

    def _file(self, run_id: str, path: str) -> pa.Table | None:
        key = f"{run_id}/{path}"
        with self._lock:
            if key in self._files:
                self._files.move_to_end(key)
                return self._files[key]
        with tempfile.TemporaryDirectory(prefix="maas-monitor-") as tmp:
            local = self._repo(run_id).download_artifacts(path, tmp)
            sealed = Path(local).read_bytes()
        try:
            data = from_sealed(self.key, sealed)
        except (SealError, pa.ArrowInvalid):
            logger.warning(
                "skipping monitoring file %s of run %s: not readable with this key", path, run_id
            )
            return None
        with self._lock:
            self._files[key] = data
            while len(self._files) > CACHE_FILES:
                self._files.popitem(last=False)
        return data
