"""Fixtures of the integration and reliability tiers: one real MLflow server and
one real Ray cluster per session, or per pytest-xdist worker that runs platform
tests, each on ports of its own (unit tests never ask for them).

The platform is started with the same code as `maas up`, on ports of its own and
a temporary MAAS_HOME, and stopped by process session at the end; the teardown
fails the run if any process it started is still alive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from maas_ray import MaaS, Settings
from maas_ray.control import platform, sessions

if TYPE_CHECKING:  # imported in the fixtures: unit tests do not pay for MLflow
    from maas_ray.control.deployer import ControlPlane
    from maas_ray.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
# Apart from the defaults (so `make test` runs beside `make up`) and outside the
# port ranges below, which Ray hands to worker processes at random. Each
# pytest-xdist worker that runs platform tests starts its own: worker k adds 20 * k.
PORTS = {
    "mlflow_port": 25500,
    "serve_port": 28500,
    "grpc_port": 28501,
    "dashboard_port": 28765,
    "ray_port": 26879,
    "ray_client_port": 21501,
    "ray_agent_port": 25365,
    "ray_agent_grpc_port": 25366,
    "ray_runtime_env_port": 25367,
    "ray_metrics_port": 25368,
    "ray_node_manager_port": 25369,
    "ray_object_manager_port": 25370,
    "ingress_fallback_port": 22365,
    "ingress_metrics_port": 20365,
    "ingress_stats_port": 23465,  # 23365..23445: the fallback proxy's gRPC (fallback + 1000)
}


def _worker() -> int:
    """This pytest-xdist worker's number (0 without xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def platform_ports(k: int) -> dict[str, Any]:
    """The ports of worker ``k``'s platform. Its port ranges lie above the kernel's
    ephemeral range (32768-60999) and apart from `make up`'s defaults (workers
    10002-19999, replicas 30000-30999 and 40000-40999) and from the node tests'
    (34000-35499): Ray's workers 1,000 ports, the replicas' HTTP and gRPC 250 each."""
    low = 61000 + 1500 * k
    return {
        **{name: port + 20 * k for name, port in PORTS.items()},
        "ray_worker_ports": f"{low}-{low + 999}",
        "ingress_http_ports": f"{low + 1000}-{low + 1249}",
        "ingress_grpc_ports": f"{low + 1250}-{low + 1499}",
    }


FIGURES: list[str] = []  # measured figures, printed at the end of the run


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist (`make test`), a worker hands its figures to the controller.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["figures"] = list(FIGURES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    FIGURES.extend(getattr(node, "workeroutput", {}).get("figures", []))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("figures measured by the integration tests")
        for line in FIGURES:
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    # The suite tests what it sets up itself: a MAAS_AUTH=off (or any MAAS_*) in the
    # caller's shell must not change the platform it starts or what the SDK sends.
    for name in [n for n in os.environ if n.startswith("MAAS_")]:
        del os.environ[name]
    # An HAProxy process replaced by a reload lives on until its connections close, at
    # most Serve's hard-stop-after (120 s: room for a 120 s explain). One that holds a
    # request its client gave up on spins a core meanwhile (HAProxy's, not ours). A
    # request waiting for a replica that never starts is answered at the predict limit
    # (serving/fallback.py), which ends it; the suite's requests take seconds, so 40 s
    # is a backstop here for any other.
    os.environ.setdefault("RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S", "40")


# Run before the platform's other tests: it restarts Ray twice, and each restore starts
# again every application deployed then, so it runs while there are fewest.
PLATFORM_FIRST = "tests/integration/test_restore.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath) or "tests/reliability" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: not item.nodeid.startswith(PLATFORM_FIRST))  # stable


PLATFORM_TIERS = ("tests/integration/", "tests/reliability/")


def platform_scope(nodeid: str) -> str:
    """The unit of work a test belongs to under pytest-xdist: the platform's tests are
    one (one worker runs them all, in file order, on one session platform), a unit
    test's file is one. Two platforms side by side (each with half the files) took
    longer here, not less: on 2 cores the suite is bound by CPU, not by waiting."""
    path = nodeid.split("::", 1)[0]
    return "platform" if path.startswith(PLATFORM_TIERS) else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (`make test` runs two workers): the platform's tests on one
    worker, the unit tier's files on the other meanwhile (see platform_scope)."""
    from xdist.scheduler import LoadScopeScheduling

    class PlatformApart(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return platform_scope(nodeid)

    return PlatformApart(config, log)


JWT_SECRET = "test-hs256-secret-of-the-session-platform-0123456789"


@pytest.fixture(scope="session")
def jwt_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An RSA and an EC key pair, their public halves in a JWKS file (an OIDC provider's)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": []}
    for kid, key, alg in (("rsa-1", rsa_key, "RS256"), ("ec-1", ec_key, "ES256")):
        public = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
        jwks["keys"].append({**public, "kid": kid, "alg": alg, "use": "sig"})
    path = tmp_path_factory.mktemp("oidc") / "jwks.json"
    path.write_text(json.dumps(jwks))
    return {"RS256": rsa_key, "ES256": ec_key, "jwks": path, "secret": JWT_SECRET}


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, jwt_keys: dict[str, Any]) -> Settings:
    # Six logical CPUs and one logical GPU on a 2-core machine: enough to place
    # several replicas and to check fractional GPU placement without a GPU.
    return Settings(
        home=tmp_path_factory.mktemp("maas-home"),
        jwt_secret=JWT_SECRET,
        jwt_jwks=str(jwt_keys["jwks"]),
        max_body_mb=1,  # small, so the 413 test sends a small body
        ray_num_cpus=6,
        ray_num_gpus=1,
        deploy_timeout_s=180,
        shared_models_per_replica=3,  # small, so the tests see the LRU evict
        **platform_ports(_worker()),
    )


@pytest.fixture(scope="session")
def env(settings: Settings) -> dict[str, str]:
    """Environment for `maas` subprocesses that talk to the session platform."""
    # Every setting (ports, home, logical CPUs/GPUs), so a `maas up` started from
    # the tests rebuilds the same cluster; a wide terminal keeps table rows whole.
    return {**os.environ, **settings.as_env(), "COLUMNS": "240"}


@pytest.fixture(scope="session")
def live(settings: Settings) -> Iterator[Settings]:
    """The running platform (MLflow server, Ray head, Serve)."""
    try:
        platform.up(settings)
    except BaseException:
        platform.down(settings)  # stop whatever part did come up
        raise
    sids = [v["sid"] for v in platform._load_state(settings).values() if "sid" in v]
    try:
        yield settings
    finally:
        platform.down(settings)
        left = [p for sid in sids for p in sessions.processes(sid)]
        strays = [
            p
            for p in psutil.process_iter(["cmdline"])
            if any(str(settings.home) in part for part in (p.info["cmdline"] or []))
        ]
        assert not left, f"processes left in the platform's sessions after down: {left}"
        assert not strays, f"processes naming MAAS_HOME left after down: {strays}"


def auth(settings: Settings) -> dict[str, str]:
    """The header that carries the platform's admin key (written by `maas up`)."""
    return {"authorization": f"Bearer {settings.admin_key_file.read_text().strip()}"}


@pytest.fixture(scope="session")
def admin_key(live: Settings) -> str:
    """The admin API key `maas up` created for the session platform."""
    return live.admin_key_file.read_text().strip()


@pytest.fixture(scope="session")
def client(live: Settings) -> Iterator[MaaS]:
    sdk = MaaS(live)
    yield sdk
    sdk.close()


@pytest.fixture(scope="session")
def registry(live: Settings) -> Registry:
    """The MLflow registry itself, for checks beside the SDK (which only has the API)."""
    from maas_ray.registry import Registry

    return Registry(live.mlflow_uri)


@pytest.fixture(scope="session")
def control(live: Settings, registry: Registry) -> ControlPlane:
    """The control plane itself, for checks beside the SDK (which only has the API)."""
    from maas_ray.control.deployer import ControlPlane

    return ControlPlane(live, registry)


@pytest.fixture(scope="session")
def seeded(client: MaaS) -> dict[str, dict[str, object]]:
    """The first four example models registered, deployed with their models.yaml specs
    and answering (what `make up` does for all seven; the other three, trained for
    minutes there, get quick versions from ``more_examples`` where a test needs them)."""
    from examples.seed import seed

    return {row["model"]: row for row in seed(client, names=SEEDED)}


SEEDED = ("sentiment", "tabular", "digits", "minilm")
# The other examples' quick training runs (the same code as `make up`'s, smaller).
QUICK = {
    "legal": {},
    "translate": {"epochs": 2, "limit": 200},
    "images": {"epochs": 2, "limit": 300},
}


@pytest.fixture(scope="session")
def more_examples(client: MaaS) -> dict[str, Any]:
    """legal, translate and images registered (quick versions) with @production at the
    new version, not deployed: their train modules by name."""
    import importlib

    from examples._common import register

    modules = {}
    for name, options in QUICK.items():
        module = importlib.import_module(f"examples.{name}.train")
        version = register(client, name, module.train(**options)).version
        client.promote(name, version)
        modules[name] = module
    return modules


def maas(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `maas` command as a user would."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "maas"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"maas {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def ray_job_submit(settings: Settings, *entrypoint: str) -> subprocess.CompletedProcess[str]:
    """`ray job submit --address DASHBOARD -- ENTRYPOINT` as typed, waiting for the end."""
    cmd = [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address"]
    return subprocess.run(
        [*cmd, settings.dashboard_url, "--", *entrypoint],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def iris_frame() -> Any:
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True)


@pytest.fixture(scope="session")
def iris(client: MaaS, iris_frame: Any) -> dict[str, Any]:
    """A scikit-learn pipeline with named columns, deployed autoscaling 1-2 on half a GPU."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris_frame.data, iris_frame.target
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    v = client.register(
        "iris",
        pipe,
        input_example=X.head(3),
        description="iris pipeline for the integration tests",
        tags={"team": "tests"},
    )
    status = client.deploy(
        "iris", v.version, min_replicas=1, max_replicas=2, num_cpus=0.5, num_gpus=0.5
    )
    return {"version": v, "status": status, "pipeline": pipe, "X": X}


def post(
    settings: Settings,
    path: str,
    body: Any,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Any:
    """POST over real HTTP to Serve with the admin key (unless ``headers`` replace it);
    ``body`` is sent as JSON unless it is bytes."""
    import httpx

    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{settings.serve_url}{path}",
        content=content,
        headers={"content-type": content_type, **(auth(settings) if headers is None else headers)},
        timeout=60,
    )


def finished(settings: Settings, resp: Any, timeout_s: float = 300) -> dict[str, Any]:
    """The operation a 202 answer started, polled (over real HTTP) until it is done."""
    import time

    import httpx

    assert resp.status_code == 202, (resp.status_code, resp.text)
    op: dict[str, Any] = resp.json()
    deadline = time.monotonic() + timeout_s
    while op["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, op
        time.sleep(0.2)
        got = httpx.get(
            f"{settings.serve_url}{resp.headers['location']}", headers=auth(settings), timeout=30
        )
        assert got.status_code == 200, got.text
        op = got.json()
    return op


def kill_session(sid: int) -> None:
    """SIGKILL every process of the session ``sid`` (a Ray node that `maas up` or a test
    started); a process may exit, or a new worker start, while the session is listed:
    kill what is there until nothing is left."""
    for _ in range(5):
        procs = sessions.processes(sid)
        if not procs:
            return
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass  # gone by itself meanwhile
        psutil.wait_procs(procs, timeout=30)
