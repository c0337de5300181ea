"""Every knob of maas_ray in one typed settings object.

Values come from keyword arguments, then ``MAAS_*`` environment variables, then
the defaults below. Read them when needed (``Settings()``), never at import.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from maas_ray.network import NetworkSettings


class Settings(NetworkSettings):
    """Platform settings; environment prefix ``MAAS_``. Where it listens (host, ports,
    ingress) is declared in network.py, the rest here."""

    model_config = SettingsConfigDict(env_prefix="MAAS_", extra="forbid", validate_default=True)

    home: Path = Field(
        default=Path("~/.maas"),
        description="Folder for the MLflow database, artifacts, Ray logs and process state.",
    )
    ray_num_cpus: int | None = Field(
        default=None,
        ge=1,
        description="Logical CPUs of the Ray head (what replicas reserve, not a limit on "
        "what they use); None: twice the machine's cores, at least 4 (see logical_cpus).",
    )
    ray_num_gpus: int | None = Field(
        default=None, ge=0, description="Logical GPUs of the Ray head; None detects them."
    )
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking/registry URI; None means the local server of `maas up`.",
    )
    mlflow_store: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the database the MLflow server of `maas up` keeps "
        "runs and the registry in (production: postgresql+psycopg2://mlflow:PASSWORD@db:5432/"
        "mlflow); None: a SQLite file, MAAS_HOME/mlflow.db.",
    )
    mlflow_artifacts: str | None = Field(
        default=None,
        description="Where the MLflow server of `maas up` keeps artifacts (s3://bucket/path; "
        "for an S3-compatible store such as MinIO also set MLFLOW_S3_ENDPOINT_URL and the "
        "AWS_* credentials); None: the folder MAAS_HOME/artifacts.",
    )
    worker_reserve: int = Field(
        default=2,
        ge=0,
        le=16,
        description="Started, idle Ray workers each node keeps for its next replica, which "
        "then starts in ~1 s instead of ~5 s (serving/reserve.py); each holds ~350 MB. "
        "0: every replica starts a new process.",
    )
    model_cache_mb: float = Field(
        default=2048,
        ge=0,
        description="Disk each machine may use for verified copies of the versions its "
        "replicas loaded (MAAS_HOME/model-cache, least recently loaded out first): the "
        "next replica of a version there starts without MLflow, also while it is down. "
        "0: every load downloads from MLflow.",
    )
    startup_timeout_s: float = Field(
        default=180.0, gt=0, description="How long `maas up` waits for each service."
    )
    deploy_timeout_s: float = Field(
        default=300.0, gt=0, description="How long `maas deploy` waits for RUNNING."
    )
    request_timeout_s: float = Field(
        default=60.0, gt=0, description="HTTP timeout of the CLI and SDK."
    )
    predict_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Longest a predict may take: past it the caller gets a JSON 504 "
        "predict_timeout at once (a spec's predict_timeout_s overrides it).",
    )
    explain_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Longest an explain call may take (the first one of a replica also "
        "builds its explainer): past it the caller gets a JSON 504 predict_timeout.",
    )
    explain_share: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="At most this share of a replica's time goes to explanations: after "
        "an explain that took t seconds the next one waits t * (1 / share - 1) (at most "
        "2 s), so explain traffic leaves predicts most of the CPU (benchmarks/explain.py).",
    )
    max_queued_requests: int = Field(
        default=128,
        ge=1,
        le=100_000,
        description="Requests a model replica holds waiting beyond its max_ongoing_requests; "
        "more are answered 503 with Retry-After at once, so an overload costs neither "
        "memory nor minutes of waiting (a spec's max_queued_requests overrides it).",
    )
    retry_after_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="The Retry-After of an overload's 503, in seconds (whole seconds on the wire).",
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description="How often the CLI and SDK try an idempotent call again (a GET, a "
        "predict, feedback) that was answered 503 or 429 (or the ingress's plain 500 for a "
        "replica gone mid-request) or whose connection failed.",
    )
    retry_backoff_s: float = Field(
        default=0.2, gt=0, le=60, description="First pause before a retry; doubles each time."
    )
    retry_max_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Longest pause between two tries (a longer Retry-After is cut to it).",
    )
    shared_models_per_replica: int = Field(
        default=8, ge=1, le=10_000, description="LRU bound of the shared pool, per replica."
    )
    shared_replicas: int = Field(default=1, ge=1, le=64, description="Shared pool replicas.")
    shared_num_cpus: float = Field(
        default=0.5, ge=0, le=256, description="CPUs per shared pool replica."
    )
    actor: str | None = Field(
        default=None,
        max_length=200,
        description="Who the history records as asking; default: the OS user.",
    )
    auth: Literal["on", "off"] = Field(
        default="on",
        description="on: every route but the health checks needs an API key or a JWT. "
        "off: open to anyone who can reach the port; local experiments only.",
    )
    ray_auth: Literal["on", "off"] = Field(
        default="on",
        description="on: the Ray head checks a token (MAAS_HOME/ray.token, made on first "
        "start) on every port it opens (RAY_AUTH_MODE=token). off: anyone who can reach "
        "Ray's ports can run code on the cluster; local experiments only.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="The key the CLI and SDK send; default: MAAS_HOME/admin.key of `maas up`.",
    )
    jwt_secret: SecretStr | None = Field(
        default=None, description="Shared secret of HS256 bearer tokens; None: no HS256."
    )
    jwt_jwks: str | None = Field(
        default=None,
        description="JWKS URL (https://.../jwks.json) or file whose keys verify RS256/ES256 "
        "bearer tokens of an OIDC provider; None: no RS256/ES256.",
    )
    jwt_audience: str | None = Field(
        default=None, description="Required `aud` claim of bearer tokens, if set."
    )
    jwt_issuer: str | None = Field(
        default=None, description="Required `iss` claim of bearer tokens, if set."
    )
    auth_refresh_s: float = Field(
        default=1.0,
        gt=0,
        le=5,
        description="How often every replica re-reads the key store (revocation delay).",
    )
    security_db: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the database holding the API keys and the audit log, "
        "which every replica on every node reads (production: the PostgreSQL server MLflow "
        "uses, e.g. postgresql+psycopg2://maas:PASSWORD@db:5432/maas); None: a SQLite file, "
        "MAAS_HOME/security/security.db.",
    )
    allow_pickle: bool = Field(
        default=True,
        description="MLflow's MLFLOW_ALLOW_PICKLE_DESERIALIZATION on the replicas, set "
        "explicitly. MLflow 3.17 gates skops (scikit-learn) and cloudpickle (PythonModel) "
        "loading behind it alike, so false serves only models-from-code versions; the "
        "digest check pins the bytes either way. See README, Security.",
    )
    max_body_mb: float = Field(
        default=16.0,
        gt=0,
        le=1024,
        description="Largest request body; larger ones get 413 before they are parsed.",
    )
    json_max_depth: int = Field(
        default=32, ge=2, le=512, description="Deepest JSON nesting accepted (400 beyond)."
    )

    access_log: bool = Field(
        default=False,
        description="Serve's access log: a line per request, with its x-request-id, in the "
        "replica's log (costs about a quarter of the throughput). Off, a replica logs a line "
        "per error answer only, with its request id.",
    )
    monitor_percent: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="Share of predictions each model records in its prediction log, 0-100 "
        "(a spec's log_percent overrides it; 100 while a canary or shadow runs).",
    )
    monitor_flush_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often a replica writes its buffered prediction log to the store.",
    )
    monitor_buffer: int = Field(
        default=10_000,
        ge=10,
        le=10_000_000,
        description="Most log records a replica holds unwritten (MLflow down: older ones "
        "are dropped and counted past it).",
    )
    monitor_window_s: float = Field(
        default=3600.0, gt=0, description="The sliding window of the monitoring figures."
    )
    monitor_metrics_s: float = Field(
        default=60.0,
        ge=1,
        le=86_400,
        description="How often the management application logs each serving version's "
        "figures as MLflow metrics of its monitoring run (charts in the MLflow UI).",
    )
    monitor_key: SecretStr | None = Field(
        default=None,
        description="Base64 of the 32-byte AES-GCM key that encrypts the prediction log and "
        "the labels; None: MAAS_HOME/security/monitor.key (mode 0600, made on first use).",
    )

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def mlflow_uri(self) -> str:
        """The MLflow tracking and registry URI clients should use."""
        return self.tracking_uri or f"http://{self.host}:{self.mlflow_port}"

    @property
    def logical_cpus(self) -> int:
        """The CPUs the Ray head offers: ``ray_num_cpus``, or twice the cores (at least 4).

        A Ray CPU is a share the scheduler hands out, not a core a replica is pinned
        to, and a model replica waits for requests most of the time. At one Ray CPU
        per core, the four examples (0.5 each) would fill a 2-core machine, with no
        room left for a canary, a surge replica or a second replica (README,
        "Sizing"); at two per core they leave half of it free.
        """
        if self.ray_num_cpus is not None:
            return self.ray_num_cpus
        return max(4, 2 * (os.cpu_count() or 1))

    @property
    def security_dir(self) -> Path:
        """Key store, audit log and the admin key of ``maas up`` (owner-only)."""
        return self.home / "security"

    @property
    def security_db_url(self) -> str:
        """``security_db``, else the SQLite file under ``security_dir``."""
        if self.security_db is not None:
            return self.security_db.get_secret_value()
        return f"sqlite:///{self.security_dir / 'security.db'}"

    @property
    def admin_key_file(self) -> Path:
        """Where ``maas up`` leaves the admin API key (mode 0600)."""
        return self.home / "admin.key"

    @property
    def ray_token_file(self) -> Path:
        """The Ray cluster's token (mode 0600), written by the first ``maas up``."""
        return self.home / "ray.token"

    @property
    def max_body_bytes(self) -> int:
        """``max_body_mb`` in bytes."""
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def ray_temp_dir(self) -> Path:
        """The Ray head's temporary folder (sessions, logs, sockets): one per platform,
        named by its GCS port. Under Ray's shared default (``/tmp/ray``) a second
        platform on the machine would take over 'auto', and the jobs the first one
        runs would attach to the other cluster. Short on purpose: Ray's socket paths
        under it must stay within the 107 characters a Unix socket path may have."""
        return Path(tempfile.gettempdir()) / f"ray-{self.ray_port}"

    @property
    def model_cache_dir(self) -> Path:
        """Verified copies of loaded versions' artifacts (registry/cache.py)."""
        return self.home / "model-cache"

    @property
    def run_dir(self) -> Path:
        """Where process ids and logs of the local platform live."""
        return self.home / "run"

    @property
    def who(self) -> str:
        """The actor recorded in a model's history for actions taken with these settings."""
        if self.actor:
            return self.actor
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"

    def as_env(self) -> dict[str, str]:
        """These settings as ``MAAS_*`` variables, for processes that must share them."""
        env = {}
        for key, value in self.model_dump().items():
            if value is None or key in ("actor", "api_key"):  # the caller's, not the platform's
                continue
            if key == "mlflow_store":  # only the MLflow server reads its database
                continue
            secret = value.get_secret_value() if isinstance(value, SecretStr) else value
            env[f"MAAS_{key.upper()}"] = str(secret)
        return env
