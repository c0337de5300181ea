"""Close the loop: a degraded version is retrained on its labelled predictions, the
result runs as a canary, and it is promoted only if it beats production on the
labels that come after.

A deployment spec's ``retrain: {when: degraded, min_labels: 200}`` starts it by
itself (the publishing thread checks every served model after each feedback and
every interval); ``maas retrain NAME`` starts the same by hand. The steps:

1. **Data**: the serving version's logged predictions of the window (production
   arm, answered 200) joined with their labels, one row per labelled input row
   (inputs as logged: masked), staged as ``input/data.parquet`` of a new run in
   the training experiment. At least ``min_labels`` rows.
2. **Job**: a PyTorch version is fine-tuned (``maas_ray.jobs.finetune``); a
   scikit-learn version's estimator is cloned (same steps and hyperparameters,
   unfitted) and fit on the rows (``maas_ray.jobs.train``). The new version is
   registered with ``maas.parent_version`` and ``maas.retrain`` (why) beside the
   run and data digest every training records.
3. **Canary**: once the job succeeded, the new version answers ``canary_percent``
   of the requests (logged at 100%, like every canary).
4. **Decision**: when the canary and production each have ``min_labels`` labelled
   answers since the canary started, their figure (the quality check's metric,
   else F1 or RMSE) over that same span decides: promote, or end the canary.

Each step is a ``maas history`` event and an audit record; the state (one per
model, the last) is a registered-model tag, so a restarted management replica
carries on where it was. Canary, promote and end run as the management API's own
operations (``act``), one at a time with every other change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from maas_ray.errors import BadRequest, Conflict, MaasError, NotFound, VersionNotDeployed
from maas_ray.monitoring import drift, quality, retrain_job
from maas_ray.monitoring.models import (
    MonitoringReport,
    RetrainBody,
    RetrainState,
    VersionFigures,
)
from maas_ray.monitoring.retrain_job import LABEL, labelled_rows
from maas_ray.monitoring.store import LABELS_STREAM, version_stream
from maas_ray.security.audit import AuditLog
from maas_ray.settings import Settings
from maas_ray.spec import LOWER_IS_BETTER, DeploymentSpec, RetrainPolicy

if TYPE_CHECKING:
    from maas_ray.monitoring.api import Monitor

logger = logging.getLogger(__name__)
SYSTEM = "maas-monitor"  # the actor of what the loop does by itself
# Act(route, model, body, actor): run a management route as an operation, its answer.
Act = Callable[[str, str, dict[str, Any], str], Any]


def metric_of(spec: DeploymentSpec, task: str | None) -> str:
    """What the canary and production are compared on."""
    if spec.quality is not None:
        return spec.quality.metric
    return "rmse" if task == "regression" else "f1"


def decide(
    metric: str, canary: VersionFigures, production: VersionFigures, min_labels: int
) -> tuple[bool | None, str]:
    """(None: wait | True: promote | False: keep production, and why) from the two
    arms' figures over the same span."""
    c, p = canary.window, production.window
    if c.labelled < min_labels or p.labelled < min_labels:
        return None, (
            f"waiting for labels: canary {c.labelled}/{min_labels}, "
            f"production {p.labelled}/{min_labels}"
        )
    new, old = getattr(c, metric), getattr(p, metric)
    if new is None or old is None:
        return None, f"no {metric} yet"
    wins = new < old if metric in LOWER_IS_BETTER else new > old
    text = (
        f"{metric} {new:.4f} (n={c.labelled}) against production v{production.version}'s "
        f"{old:.4f} (n={p.labelled})"
    )
    return wins, text


class Retrainer:
    """The loop's steps, run by the management replica (see the module's text)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.act: Act | None = None  # set by the management application
        self.watch: Callable[[str], None] = lambda _: None  # the publisher polls a job
        self._lock = threading.Lock()

    @property
    def registry(self) -> Any:
        return self.monitor.registry

    def state(self, model: str) -> RetrainState | None:
        """The model's last retrain (None: never)."""
        raw = self.registry.get_retrain(model)
        return None if raw is None else RetrainState.model_validate(raw)

    def _save(self, state: RetrainState) -> RetrainState:
        self.registry.set_retrain(state.model, state.model_dump())
        if state.active:
            self.watch(state.model)
        return state

    # -- start ----------------------------------------------------------------------
    def by_hand(self, model: str, body: RetrainBody, actor: str) -> RetrainState:
        """``maas retrain NAME``: the spec's policy (or the defaults) with ``body`` over it."""
        raw = self.registry.get_spec(model)
        if raw is None:
            raise VersionNotDeployed(model)
        spec = DeploymentSpec.model_validate(raw)
        policy = spec.retrain or RetrainPolicy(when="manual")
        policy = policy.model_copy(update=body.model_dump(exclude_none=True))
        with self._lock:
            return self._start(model, spec, policy, actor, f"by hand ({actor})")

    def _start(
        self, model: str, spec: DeploymentSpec, policy: RetrainPolicy, actor: str, reason: str
    ) -> RetrainState:
        """Stage the labelled window and submit the job; the state it starts in."""
        if spec.mode == "shared":
            raise BadRequest(
                f"'{model}' is served by the shared pool: a retrained version runs as a "
                "canary, which needs a dedicated deployment (maas deploy NAME)"
            )
        last = self.state(model)
        if last is not None and last.active:
            raise Conflict(
                f"a retrain of '{model}' is already in its {last.state} step "
                f"(job {last.job_id}); `maas retrain {model} --show` tells how it goes"
            )
        if spec.challenger is not None:
            raise Conflict(
                f"'{model}' runs a {spec.side} of version {spec.challenger.version}: promote "
                "it or end it (maas rollback) before retraining"
            )
        settings = Settings()
        version = self.registry.resolve(model, spec.version, spec.alias).version
        window_s = policy.window_s or settings.monitor_window_s
        frame = self._rows(model, version, time.time() - window_s)
        if len(frame) < policy.min_labels:
            raise Conflict(
                f"'{model}' version {version} has {len(frame)} labelled predictions in the "
                f"last {window_s:g} s; retraining takes {policy.min_labels}: send labels "
                "(maas feedback) or lower min_labels"
            )
        free = _free_cpus()
        if free <= 0:
            raise Conflict(
                f"no CPU is free beside serving to retrain '{model}': undeploy a model or "
                "lower a deployment's replicas"
            )
        kind, job_id, run_id = retrain_job.submit(
            self.registry, settings, model, version, frame, policy, reason, actor, free
        )
        state = RetrainState(
            model=model,
            state="training",
            reason=reason,
            actor=actor,
            from_version=version,
            kind=kind,  # type: ignore[arg-type]
            rows=len(frame),
            window_s=window_s,
            metric=metric_of(spec, retrain_job.task_of(frame[LABEL])),
            min_labels=policy.min_labels,
            canary_percent=policy.canary_percent,
            job_id=job_id,
            run_id=run_id,
            started_at=time.time(),
            message=f"{kind} job {job_id} submitted",
        )
        self._note(
            state,
            "retrain",
            f"{reason}; {kind} job {job_id} on {len(frame)} labelled predictions",
            audit=actor == SYSTEM,  # by hand, the route's own audit record says it
        )
        return self._save(state)

    def _rows(self, model: str, version: str, since: float) -> pd.DataFrame:
        store = self.monitor.store
        streams = store.streams(model)
        stream = version_stream(version)
        if stream not in streams:
            return pd.DataFrame()
        logged = store.read(model, "predictions", {stream: streams[stream]})[stream]
        labels_runs = {LABELS_STREAM: streams.get(LABELS_STREAM, [])}
        labels = quality.latest_labels(store.read(model, "labels", labels_runs)[LABELS_STREAM])
        names = drift.input_names(self.registry.get_version(model, version).signature)
        return labelled_rows(logged, labels, names, since)

    # -- the steps after -------------------------------------------------------------
    def step(
        self, model: str, raw: dict[str, Any] | None, report: MonitoringReport | None = None
    ) -> None:
        """Move ``model``'s retrain on, or start one if its policy says so (``report``:
        the window's figures, when the caller has them)."""
        with self._lock:
            state = self.state(model)
            if state is not None and state.state == "training":
                self._training(state)
            elif state is not None and state.state == "canary":
                self._canary(state, raw)
            elif raw is not None and report is not None:
                self._maybe_start(model, DeploymentSpec.model_validate(raw), report, state)

    def _maybe_start(
        self,
        model: str,
        spec: DeploymentSpec,
        report: MonitoringReport,
        last: RetrainState | None,
    ) -> None:
        policy = spec.retrain
        if policy is None or policy.when != "degraded" or spec.quality is None:
            return
        if last is not None and time.time() - (last.ended_at or 0) < policy.cooldown_s:
            return
        if spec.challenger is not None or spec.mode == "shared":
            return
        version = self.registry.resolve(model, spec.version, spec.alias).version
        entry = next(
            (v for v in report.versions if (v.version, v.arm) == (version, "production")), None
        )
        if entry is None:
            return
        verdict = quality.verdict(spec.quality, entry.window)
        if not verdict.startswith("degraded") or entry.window.labelled < policy.min_labels:
            return
        try:
            self._start(model, spec, policy, SYSTEM, verdict)
        except MaasError as exc:
            failed = RetrainState(
                model=model,
                state="failed",
                reason=verdict,
                actor=SYSTEM,
                from_version=version,
                kind="train",
                rows=0,
                window_s=policy.window_s or Settings().monitor_window_s,
                metric=spec.quality.metric,
                min_labels=policy.min_labels,
                canary_percent=policy.canary_percent,
                started_at=time.time(),
                ended_at=time.time(),
                message=exc.message[:500],
            )
            self._note(failed, "retrain-failed", f"{verdict}; could not start: {exc.message}")
            self._save(failed)

    def _training(self, state: RetrainState) -> None:
        from maas_ray.jobs.submit import Jobs

        try:
            job = Jobs(Settings()).get(state.job_id or "")
        except NotFound:
            self._end(state, "failed", f"job {state.job_id} is gone from the cluster")
            return
        if not job.done:
            self.watch(state.model)
            return
        if job.status != "SUCCEEDED" or job.result is None:
            self._end(state, "failed", f"job {job.id} {job.status.lower()}: {job.message}")
            return
        result = job.result
        state.version = result.version
        scores = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
        self._note(
            state,
            "retrain-trained",
            f"version {result.version} registered (run {result.run_id}; held out: {scores})",
            to_version=result.version,
        )
        actor = _loop_actor(state)
        try:
            self._act(
                "canary", state, {"version": result.version, "percent": state.canary_percent}, actor
            )
        except MaasError as exc:
            self._end(
                state,
                "failed",
                f"the canary of version {result.version} did not start: {exc.message}",
            )
            return
        state.state = "canary"
        state.canary_since = time.time()
        state.message = (
            f"version {result.version} answers {state.canary_percent:g}%; decided once both "
            f"arms have {state.min_labels} labelled answers"
        )
        self._save(state)

    def _canary(self, state: RetrainState, raw: dict[str, Any] | None) -> None:
        spec = None if raw is None else DeploymentSpec.model_validate(raw)
        if spec is None or spec.canary is None or spec.canary.version != state.version:
            production = self.registry.get_alias(state.model, "production")
            if production == state.version:
                self._end(
                    state, "promoted", "promoted by a person before the labels decided", note=False
                )
            else:
                self._end(state, "ended", "the canary was changed or ended by a person", note=False)
            return
        since = state.canary_since or state.started_at
        report = self.monitor.report(state.model, max(1.0, time.time() - since), spec=raw)
        serving = self.registry.resolve(state.model, spec.version, spec.alias).version
        canary = _entry(report, state.version or "", "canary")
        production = _entry(report, serving, "production")
        if canary is None or production is None:
            return
        wins, why = decide(state.metric, canary, production, state.min_labels)
        if wins is None:
            if why != state.message:
                state.message = why
                self._save(state)
            return
        version = state.version or ""
        actor = _loop_actor(state)
        try:
            if wins:
                self._act("promote", state, {"version": version}, actor)
            else:
                self._act("rollback", state, {}, actor)
        except MaasError as exc:
            state.message = f"could not {'promote' if wins else 'end'} the canary: {exc.message}"
            self._save(state)
            return
        self._end(state, "promoted" if wins else "kept", why)

    def _end(self, state: RetrainState, phase: str, why: str, note: bool = True) -> None:
        state.state = phase  # type: ignore[assignment]
        state.ended_at = time.time()
        state.message = why[:500]
        if note:
            action = {"failed": "retrain-failed", "promoted": "retrain-promoted"}.get(
                phase, "retrain-kept"
            )
            self._note(state, action, why, to_version=state.version)
        self._save(state)

    def _act(self, route: str, state: RetrainState, body: dict[str, Any], actor: str) -> Any:
        if self.act is None:
            raise MaasError("no management application to run the change")
        return self.act(route, state.model, body, actor)

    def _note(
        self,
        state: RetrainState,
        action: str,
        detail: str,
        to_version: str | None = None,
        audit: bool = True,
    ) -> None:
        """One history event, and one audit record of what the loop did."""
        actor = SYSTEM if action != "retrain" else state.actor
        self.registry.record(
            state.model,
            actor,
            action,
            from_version=state.from_version,
            to_version=to_version,
            detail=detail[:1000],
        )
        if audit:
            status = 422 if action == "retrain-failed" else 200
            AuditLog(Settings().security_db_url).record(
                actor, action, state.model, status, detail[:1000]
            )


def _loop_actor(state: RetrainState) -> str:
    """Who the loop's canary, promote and end are audited as."""
    return SYSTEM if state.actor == SYSTEM else f"{SYSTEM} (retrain by {state.actor})"


def _entry(report: MonitoringReport, version: str, arm: str) -> VersionFigures | None:
    return next((v for v in report.versions if (v.version, v.arm) == (version, arm)), None)


def _free_cpus() -> float:
    import ray

    return float(ray.available_resources().get("CPU", 0.0))
