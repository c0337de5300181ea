"""The management API's routes (the `maas-admin` application at `/v1/admin`): status,
models and versions, lifecycle actions and their operations, training jobs, keys and
the audit log."""

from __future__ import annotations

from typing import Any

from maas_ray.routing import Route

ADMIN_PREFIX = "/v1/admin"
# Scopes that read the platform's state: any one of them opens a GET under /v1/admin.
READERS = ("metrics", "deploy", "register")


def _admin(name: str, method: str, rest: str, scopes: tuple[str, ...], **kw: Any) -> Route:
    tag = "security" if rest.startswith(("/keys", "/audit")) else "admin"
    return Route(name, method, ADMIN_PREFIX + rest, scopes, "admin", tag, **kw)


def _read(name: str, rest: str, summary: str, answer: str, **kw: Any) -> Route:
    return _admin(name, "GET", rest, READERS, summary=summary, answer=answer, **kw)


def _change(name: str, rest: str, summary: str, answer: str, body: str | None, **kw: Any) -> Route:
    """A lifecycle POST: may start replicas (500 deployment_failed) or find no room (409)."""
    kw.setdefault("errors", (404, 409, 500))
    kw.setdefault("params", ("actor", "timeout_s"))
    return _admin(
        name, "POST", rest, ("deploy",), summary=summary, answer=answer, body=body, long=True, **kw
    )


def _keys(name: str, method: str, rest: str, summary: str, answer: str, **kw: Any) -> Route:
    return _admin(name, method, rest, ("admin",), summary=summary, answer=answer, **kw)


_NAMED = "/models/{name}"
_FOUND = {"errors": (404,)}
_JOBS = ("train", "metrics")  # who may read jobs

MANAGEMENT: tuple[Route, ...] = (
    _admin(
        "whoami",
        "GET",
        "/whoami",
        (),
        summary="The credential asking: its name and scopes, and where the MLflow UI is.",
        answer="Identity",
    ),
    _read("status", "/status", "One row per deployed model.", "[ModelStatus]"),
    _read(
        "cluster",
        "/cluster",
        "Per node: logical CPU/GPU used of total, host memory used of total.",
        "[NodeResources]",
    ),
    _read("list_models", "/models", "Registered models.", "[ModelInfo]"),
    _read("show_model", _NAMED, "One registered model.", "ModelInfo", **_FOUND),
    _read(
        "history",
        _NAMED + "/history",
        "Alias moves and deploy actions.",
        "[HistoryEvent]",
        **_FOUND,
    ),
    _admin(
        "register",
        "POST",
        _NAMED + "/versions",
        ("register",),
        summary="Register a new version.",
        body="RegisterBody",
        answer="VersionInfo",
        status=201,
        errors=(404,),
        params=("actor",),
    ),
    _change(
        "deploy",
        _NAMED + "/deploy",
        "Deploy (or redeploy) the model; no body: the defaults, latest version.",
        "ModelStatus",
        "DeployBody",
        body_required=False,
    ),
    _change("undeploy", _NAMED + "/undeploy", "Stop serving the model.", "UndeployAnswer", None),
    _change(
        "promote",
        _NAMED + "/promote",
        "Point an alias at a version.",
        "PromoteAnswer",
        "PromoteBody",
    ),
    _change(
        "rollback",
        _NAMED + "/rollback",
        "End a canary or shadow, else move the alias back one step.",
        "RollbackAnswer",
        "RollbackBody",
        body_required=False,
    ),
    _change("canary", _NAMED + "/canary", "Start or change a canary.", "ModelStatus", "Canary"),
    _change("shadow", _NAMED + "/shadow", "Start or change a shadow.", "ModelStatus", "Shadow"),
    _change(
        "apply",
        "/apply",
        "Make a MaasDeployments file's specs the stored ones (all or nothing).",
        "ApplyAnswer",
        "DeploymentFile",
    ),
    _read(
        "operations",
        "/operations",
        "The newest management operations (deploys, canaries, ...), newest first.",
        "[Operation]",
    ),
    _read(
        "operation",
        "/operations/{op_id}",
        "One operation: its state, the steps done, its result or error.",
        "Operation",
        **_FOUND,
    ),
    _admin(
        "train",
        "POST",
        "/train",
        ("train",),
        summary="Train a pipeline as a Ray job; answers 202 with the job at once.",
        body="TrainingSpec",
        answer="JobInfo",
        status=202,
        errors=(503,),
        params=("actor",),
    ),
    _admin(
        "tune",
        "POST",
        "/tune",
        ("train",),
        summary="Search a pipeline's hyperparameters with Ray Tune as a Ray job, register "
        "the best; answers 202 with the job at once.",
        body="TuningSpec",
        answer="JobInfo",
        status=202,
        errors=(503,),
        params=("actor",),
    ),
    _admin(
        "finetune",
        "POST",
        _NAMED + "/finetune",
        ("train",),
        summary="Fine-tune a PyTorch version with Ray Train as a Ray job; answers 202 "
        "with the job at once.",
        body="FinetuneBody",
        answer="JobInfo",
        status=202,
        errors=(404, 503),
        params=("actor",),
    ),
    _admin(
        "retrain",
        "POST",
        _NAMED + "/retrain",
        ("train",),
        summary="Retrain the serving version on its labelled predictions as a Ray job; the "
        "result then runs as a canary and is promoted only if it beats production on the "
        "labels that follow. Answers 202 with the retrain's state at once.",
        body="RetrainBody",
        body_required=False,
        answer="RetrainState",
        status=202,
        errors=(404, 409, 503),
        params=("actor",),
    ),
    _admin(
        "retrain_state",
        "GET",
        _NAMED + "/retrain",
        ("train", *READERS),
        summary="The model's last retrain: its step, job, version and decision.",
        answer="RetrainState",
        **_FOUND,
    ),
    _admin("jobs", "GET", "/jobs", _JOBS, summary="Ray jobs, newest first.", answer="[JobInfo]"),
    _admin(
        "job",
        "GET",
        "/jobs/{job_id}",
        _JOBS,
        summary="One job: status, stage, and the result of a finished training.",
        answer="JobInfo",
        **_FOUND,
    ),
    _admin(
        "job_logs",
        "GET",
        "/jobs/{job_id}/logs",
        _JOBS,
        summary="A job's log so far.",
        answer="JobLogs",
        **_FOUND,
    ),
    _admin(
        "stop_job",
        "POST",
        "/jobs/{job_id}/stop",
        ("train",),
        summary="Stop a job (a finished one stays as it ended).",
        answer="JobInfo",
        errors=(404,),
        params=("actor",),
    ),
    _keys("list_keys", "GET", "/keys", "Every API key (never the secrets).", "[KeyRecord]"),
    _keys(
        "create_key",
        "POST",
        "/keys",
        "Create an API key; the answer holds the key, shown only this once.",
        "NewKey",
        body="KeyBody",
        status=201,
        params=("actor",),
    ),
    _keys(
        "revoke_key",
        "DELETE",
        "/keys/{key_id}",
        "Revoke an API key (kept, marked revoked; revoking twice is harmless).",
        "KeyRecord",
        errors=(404,),
        params=("actor",),
    ),
    _keys(
        "audit",
        "GET",
        "/audit",
        "The newest management actions, oldest first.",
        "[AuditRecord]",
        errors=(422,),
        params=("audit_model", "audit_action", "audit_limit"),
    ),
)
