"""PostgreSQL in place of SQLite, as in production: the MLflow server that `maas up`
starts keeps its runs and registry there (``MAAS_MLFLOW_STORE``), and the API keys and
audit log live in a second database on the same server (``MAAS_SECURITY_DB``).

A real PostgreSQL (Debian's ``postgresql`` package, installed by ``make test``) is
started by the fixture in a folder of its own, on a free loopback port, with a
password; it and the MLflow server are stopped by process id at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from pydantic import SecretStr
from sklearn.linear_model import LogisticRegression

from maas_ray import Settings
from maas_ray.control import platform
from maas_ray.control.history import rollback_target
from maas_ray.errors import PlatformUnavailable
from maas_ray.registry import Registry
from maas_ray.security.audit import AuditLog
from maas_ray.security.keys import KeyCache, KeyStore

PASSWORD = "pg-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        pytest.fail("PostgreSQL is not installed: `make test` installs Debian's postgresql")
    return found[-1].parent


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package made a `postgres` user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server on loopback with databases ``mlflow`` and ``maas``; its URL base."""
    import psycopg2

    bindir = _pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="maas-pg-"))
    data, pwfile = folder / "data", folder / "pw"
    pwfile.write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "maas",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-w",
                "-l",
                str(folder / "log"),
            ]
            + ["start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        base = f"postgresql+psycopg2://maas:{PASSWORD}@127.0.0.1:{port}"
        conn = psycopg2.connect(
            host="127.0.0.1", port=port, user="maas", password=PASSWORD, dbname="postgres"
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE mlflow")
            cur.execute("CREATE DATABASE maas")
        conn.close()
        yield base
    finally:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # a "fast" shutdown: closes the clients' connections
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (data / "postmaster.pid").exists():
            time.sleep(0.2)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_settings(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """An MLflow server of `maas up` on PostgreSQL (nothing else of the platform)."""
    settings = Settings(
        home=tmp_path_factory.mktemp("pg-home"),
        mlflow_port=_free_port(),
        mlflow_store=SecretStr(f"{postgres}/mlflow"),
        security_db=SecretStr(f"{postgres}/maas"),
    )
    try:
        state = platform.up_mlflow(settings)
        assert state.started
        yield settings
    finally:
        platform.down(settings)


def test_the_registry_and_its_lifecycle_state_live_in_postgresql(pg_settings: Settings) -> None:
    import psycopg2

    registry = Registry(pg_settings.mlflow_uri, answering=True)
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    versions = []
    for flip in (False, True, False):
        y = np.array([0, 0, 1, 1]) if not flip else np.array([1, 1, 0, 0])
        model = LogisticRegression().fit(x, y)
        versions.append(registry.register("pgm", model, input_example=x[:1]).version)
    assert versions == ["1", "2", "3"]
    # promote 1 -> 2 -> 3, then a rollback target from the durable history
    before = None
    for version in versions:
        previous = registry.set_alias("pgm", "production", version)
        assert previous == before
        registry.record(
            "pgm", "ci", "promote", alias="production", from_version=previous, to_version=version
        )
        before = version
    registry.set_spec("pgm", {"model": "pgm", "alias": "production", "num_replicas": 1})
    events = registry.history("pgm")
    assert [e.to_version for e in events] == versions
    assert rollback_target(events, "production") == "2"
    assert registry.list_specs()["pgm"]["alias"] == "production"
    # a verified download of version 2 predicts what was registered
    folder = registry.download_verified("pgm", "2", pg_settings.home / "v2")
    loaded = mlflow.pyfunc.load_model(str(folder))
    assert list(loaded.predict(x)) == [1, 1, 0, 0]
    # the rows are in PostgreSQL, not in a SQLite file under MAAS_HOME
    assert not (pg_settings.home / "mlflow.db").exists()
    store = pg_settings.mlflow_store.get_secret_value()  # type: ignore[union-attr]
    conn = psycopg2.connect(store.replace("postgresql+psycopg2", "postgresql"))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM model_versions WHERE name = 'pgm'")
        assert cur.fetchone() == (3,)
    conn.close()


def test_keys_and_audit_live_in_postgresql(pg_settings: Settings) -> None:
    url = pg_settings.security_db_url
    assert url.startswith("postgresql")
    store = KeyStore(url)
    record, key = store.create(["predict:pgm"], name="pg-bot")
    replica = KeyCache(KeyStore(url), refresh_s=0.2)  # as a replica on another node
    assert replica.lookup(key) is not None
    store.revoke(record.id)
    time.sleep(0.3)
    assert replica.lookup(key) is None
    log = AuditLog(url)
    log.record("key:pg-bot", "deploy", "pgm", 200, "version 3")
    assert [(r.actor, r.target) for r in log.query(target="pgm")] == [("key:pg-bot", "pgm")]
    assert not (pg_settings.security_dir / "security.db").exists()
    # a server that does not answer is a 503 for a key never seen, not a 500
    gone = KeyCache(KeyStore(url.rsplit(":", 1)[0] + f":{_free_port()}/maas"), refresh_s=1)
    with pytest.raises(PlatformUnavailable, match="security database"):
        gone.lookup(key)
