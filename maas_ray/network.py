"""Where the platform listens: the address every service binds to, each port, and Serve's
ingress. A part of ``Settings`` (settings.py), which every caller uses; apart only to keep
each file a readable size."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings


class NetworkSettings(BaseSettings):
    """The host, ports and ingress knobs of ``Settings`` (the same ``MAAS_*`` variables)."""

    host: str = Field(default="127.0.0.1", description="Address every service binds to.")
    mlflow_port: int = Field(default=5000, ge=1, le=65535, description="MLflow server port.")
    serve_port: int = Field(default=8000, ge=1, le=65535, description="Ray Serve HTTP port.")
    grpc_port: int = Field(
        default=9000,
        ge=0,
        le=65535,
        description="Ray Serve gRPC port: the Open Inference Protocol's gRPC service "
        "(inference.GRPCInferenceService); 0 turns gRPC off.",
    )
    dashboard_port: int = Field(
        default=8265, ge=1, le=65535, description="Ray dashboard and Serve REST API port."
    )
    ray_port: int = Field(default=6379, ge=1, le=65535, description="Ray GCS port of the head.")
    ray_client_port: int = Field(
        default=10001, ge=1, le=65535, description="Ray client server port of the head."
    )
    ray_agent_port: int = Field(
        default=52365, ge=1, le=65535, description="Ray dashboard agent HTTP port of the head."
    )
    ray_agent_grpc_port: int = Field(
        default=52366, ge=1, le=65535, description="Ray dashboard agent gRPC port of the head."
    )
    ray_runtime_env_port: int = Field(
        default=52367, ge=1, le=65535, description="Ray runtime env agent port of the head."
    )
    ray_metrics_port: int = Field(
        default=52368,
        ge=1,
        le=65535,
        description="Port of the head's Prometheus metrics (Ray's --metrics-export-port).",
    )
    ray_node_manager_port: int = Field(
        default=6380, ge=1, le=65535, description="Ray raylet (node manager) port of the head."
    )
    ray_object_manager_port: int = Field(
        default=6381, ge=1, le=65535, description="Ray object manager port of the head."
    )
    ray_worker_ports: str = Field(
        default="10002-19999",
        pattern=r"^\d{1,5}-\d{1,5}$",
        description="Port range LOW-HIGH of Ray workers; keep the other ports out of it.",
    )
    ingress: Literal["haproxy", "proxy"] = Field(
        default="haproxy",
        description="Serve's HTTP ingress: haproxy (Ray 2.60's HAProxy in front of replicas "
        "that answer HTTP themselves; 3.2x the throughput here) or proxy (Serve's "
        "Python proxy actor). haproxy falls back to proxy where no HAProxy binary exists.",
    )
    ingress_http_ports: str = Field(
        default="30000-30999",
        pattern=r"^\d{1,5}-\d{1,5}$",
        description="Ports LOW-HIGH the replicas' own HTTP servers take in haproxy mode.",
    )
    ingress_grpc_ports: str = Field(
        default="40000-40999",
        pattern=r"^\d{1,5}-\d{1,5}$",
        description="Ports LOW-HIGH the replicas' own gRPC servers take in haproxy mode.",
    )
    ingress_fallback_port: int = Field(
        default=8500,
        ge=1,
        le=65535,
        description="haproxy mode: HTTP port of Serve's Python proxy that HAProxy falls "
        "back to while a route has no replica (gRPC: this + 1000).",
    )
    ingress_metrics_port: int = Field(
        default=9101, ge=1, le=65535, description="haproxy mode: HAProxy's Prometheus port."
    )
    ingress_stats_port: int = Field(
        default=8404, ge=1, le=65535, description="haproxy mode: HAProxy's stats page port."
    )
    ingress_drain_s: float = Field(
        default=1.0,
        ge=0,
        le=600,
        description="haproxy mode: how long a stopping replica stays reachable so load "
        "balancers drop it (Ray's default 30 s is for external ones; HAProxy reloads in "
        "well under a second and retries a refused connection on another replica). Each "
        "undeploy, promote and rollback waits it out.",
    )
    ingress_client_timeout_s: int = Field(
        default=60,
        ge=1,
        le=86_400,
        description="haproxy mode: HAProxy closes a client connection that sends nothing "
        "this long: one kept alive but idle, or one sending its request this slowly (Ray's "
        "default is an hour). A slow client costs HAProxy a connection, not a thread, so "
        "hundreds of them do not delay other clients.",
    )

    @property
    def serve_url(self) -> str:
        """Base URL of the Serve HTTP ingress."""
        return f"http://{self.host}:{self.serve_port}"

    @property
    def dashboard_url(self) -> str:
        """Base URL of the Ray dashboard (also the Serve REST API)."""
        return f"http://{self.host}:{self.dashboard_port}"

    @property
    def ray_address(self) -> str:
        """GCS address for ``ray.init(address=...)`` and ``ray job submit``."""
        return f"{self.host}:{self.ray_port}"
