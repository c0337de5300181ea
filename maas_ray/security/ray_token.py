"""Ray's own door: the token every process needs to reach the cluster `maas up` starts.

With ``RAY_AUTH_MODE=token`` (Ray 2.60) the Ray head checks a shared token on
every gRPC port (GCS, raylet, workers, the client server, the dashboard agent,
each replica's inter-deployment server) and on the dashboard's HTTP API, Jobs
API included. ``maas up`` generates the token once, 0600 in
``MAAS_HOME/ray.token``, and hands it to Ray by path (``RAY_AUTH_TOKEN_PATH``);
Ray's own ``ray get-auth-token --generate`` would write ``~/.ray/auth_token``
with the umask's mode, which other users can read.

On loopback (the default ``MAAS_HOST``), Ray would still bind the machine's
routable address: it replaces a loopback ``--node-ip-address`` with it.
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` turns that off on Linux too, so the
head, and every client that resolves its address, stays on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
from pathlib import Path

from maas_ray.settings import Settings

RAY_AUTH_OFF_WARNING = (
    "MAAS_RAY_AUTH=off: Ray's ports ask for no token; anyone who can reach them "
    "can run code on the cluster. Use this for local experiments only"
)
# Set by the user for another cluster, it would win over our token file.
FOREIGN_TOKEN = "RAY_AUTH_TOKEN"


def on_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def write_once(path: Path, secret: str) -> bool:
    """Write ``secret`` to a new owner-only file (0600) unless ``path`` exists already;
    True if this call wrote it. Of two processes racing, exactly one writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)  # an older copy, or one a user copied in, stays owner-only
        return False
    with os.fdopen(fd, "w") as out:
        out.write(secret)
    return True


def ensure_token(settings: Settings) -> bool:
    """Create the cluster's token (0600) unless it exists; True if it was created."""
    return write_once(settings.ray_token_file, secrets.token_hex(32))  # Ray's own format


def read_token(settings: Settings) -> str | None:
    """The cluster's token, or None with Ray auth off or before the first `maas up`."""
    if settings.ray_auth == "off":
        return None
    try:
        return settings.ray_token_file.read_text().strip() or None
    except FileNotFoundError:
        return None


def client_env(settings: Settings) -> dict[str, str]:
    """What a process needs in its environment to reach the cluster (``maas ray-env``)."""
    env = {"RAY_AUTH_MODE": "token" if settings.ray_auth == "on" else "disabled"}
    if settings.ray_auth == "on":
        env["RAY_AUTH_TOKEN_PATH"] = str(settings.ray_token_file)
    if on_loopback(settings.host):
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    return env


def with_client_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """``base`` (an environment) with ``client_env`` in it and no foreign token."""
    env = {k: v for k, v in base.items() if k != FOREIGN_TOKEN}
    env.update(client_env(settings))
    return env


def export(settings: Settings) -> None:
    """Put ``client_env`` into this process's environment, for the Ray calls it makes.

    Ray reads the mode when its config is first initialised; if ``ray`` is already
    imported, it is re-initialised here, as Ray itself does when it turns auth on.
    """
    os.environ.pop(FOREIGN_TOKEN, None)
    os.environ.update(client_env(settings))
    raylet = sys.modules.get("ray._raylet")
    if raylet is not None:
        raylet.Config.initialize("")


def dashboard_headers(settings: Settings) -> dict[str, str]:
    """The header the Ray dashboard (Serve REST API, Jobs API) asks for."""
    token = read_token(settings)
    return {"authorization": f"Bearer {token}"} if token else {}
