"""Imported by every Ray worker process at start (``RAY_preload_python_modules``),
before Serve renders HAProxy's config: HAProxy's stats page and Prometheus
exporter ask for no credential, so they bind 127.0.0.1, and its admin socket is
the owner's only.

Ray 2.60 writes ``bind *:<stats port>`` and ``bind :<metrics port>`` (every
interface) and ``mode 666`` into its template and offers no setting for either,
so the template's text is edited as it is imported. Each edit is checked: should a Ray
upgrade change the template, a warning names the line, and the platform's test
of its listening sockets fails on the exposed port.

Ray's gRPC ingress servers (each ingress replica's own, and the fallback proxy's)
listen on ``[::]``, every interface, also with no setting; they are moved to the
node's address (127.0.0.1 unless ``MAAS_HOST`` says otherwise), where HAProxy
reaches them, by wrapping the one function Ray adds their address with. Each ingress
replica's HTTP server binds its node's address too (Serve would give it the head's).
The same hook on Serve's replica module gives an overload's 503 the platform's JSON
body (``serving/overload.py``), and on its application-state module lets the
platform's application builds may reuse a worker (``serving/builds.py``).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

EDITS = (
    ("  bind *:{{ config.stats_port }}", "  bind 127.0.0.1:{{ config.stats_port }}"),
    ("    bind :{{ config.metrics_port }}", "    bind 127.0.0.1:{{ config.metrics_port }}"),
    ("{{ config.socket_path }} mode 666", "{{ config.socket_path }} mode 600"),
)


def edit(template: str) -> tuple[str, list[str]]:
    """``template`` with every edit made, and the lines that were not found."""
    missing = []
    for old, new in EDITS:
        if old in template:
            template = template.replace(old, new)
        elif new not in template:
            missing.append(old.strip())
    return template, missing


TEMPLATES = "ray.serve._private.haproxy_templates"
GRPC_ADDRESS = "ray.serve._private.default_impl"  # add_grpc_address: "[::]:<port>"
ALL_INTERFACES = "[::]:"


def _apply(module: ModuleType) -> None:
    patched, missing = edit(module.HAPROXY_CONFIG_TEMPLATE)
    for line in missing:
        logger.warning("HAProxy template changed: %r not found, left as Ray wrote it", line)
    module.HAPROXY_CONFIG_TEMPLATE = patched  # type: ignore[attr-defined]


def node_address(address: str, node_ip: str) -> str:
    """``address`` with every interface (``[::]:port``) narrowed to ``node_ip``."""
    if not address.startswith(ALL_INTERFACES):
        return address
    port = address.removeprefix(ALL_INTERFACES)
    host = f"[{node_ip}]" if ":" in node_ip else node_ip
    return f"{host}:{port}"


def _narrow_grpc(module: ModuleType) -> None:
    real = getattr(module, "add_grpc_address", None)
    if real is None:
        logger.warning("Ray's add_grpc_address is gone: its gRPC ingress keeps Ray's address")
        return

    def add_grpc_address(server: object, address: str) -> object:
        import ray

        return real(
            server, node_address(address, ray._private.worker.global_worker.node_ip_address)
        )

    module.add_grpc_address = add_grpc_address  # type: ignore[attr-defined]


REPLICA = "ray.serve._private.replica"  # start_asgi_http_server: direct ingress, HTTP


def _own_node_http(module: ModuleType) -> None:
    """A replica's direct-ingress HTTP server binds its own node's address.

    Serve gives it ``http_options.host``, the head's address (``MAAS_HOST``), which a
    replica on another node cannot bind, while HAProxy looks for it at its node's
    address; on the head both are the same.
    """
    real = getattr(module, "start_asgi_http_server", None)
    if real is None:
        logger.warning("Ray's start_asgi_http_server is gone: replicas bind Serve's host")
        return

    async def start_asgi_http_server(app: object, options: Any, *args: Any, **kw: Any) -> Any:
        import ray

        node_ip = ray._private.worker.global_worker.node_ip_address
        if options.host not in ("0.0.0.0", "::", node_ip):
            options = options.model_copy(update={"host": node_ip})
        return await real(app, options, *args, **kw)

    module.start_asgi_http_server = start_asgi_http_server  # type: ignore[attr-defined]


def _replica(module: ModuleType) -> None:
    _own_node_http(module)
    # Not an address, but the same module and hook: an overload's 503 in the platform's
    # JSON (imported here, when a worker imports Serve's replica, not in every worker).
    from maas_ray.serving import overload

    overload.install(module)


APPLICATION_STATE = "ray.serve._private.application_state"  # the controller's builds


def _builds(module: ModuleType) -> None:
    # The same hook again: the platform's application builds may reuse a worker.
    from maas_ray.serving import builds

    builds.install(module)


EDITS_ON_IMPORT = {
    TEMPLATES: _apply,
    GRPC_ADDRESS: _narrow_grpc,
    REPLICA: _replica,
    APPLICATION_STATE: _builds,
}


class _EditOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Edits a module of ``EDITS_ON_IMPORT`` right after Python runs it, before anyone
    reads it.

    A hook rather than an import here: importing Ray Serve would add most of a
    second to the start of every worker, and most workers never run HAProxy.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._real: importlib.abc.Loader | None = None

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != self.name:
            return None
        sys.meta_path.remove(self)  # one module, once
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self._real, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        assert self._real is not None
        return self._real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        assert self._real is not None
        self._real.exec_module(module)
        EDITS_ON_IMPORT[self.name](module)


for _name, _edit in EDITS_ON_IMPORT.items():
    if _name in sys.modules:
        _edit(sys.modules[_name])
    else:
        sys.meta_path.insert(0, _EditOnImport(_name))
