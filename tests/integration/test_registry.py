"""Registering: the SDK (sklearn, torch.nn.Module, PythonModel) and `maas register --model-uri`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest

from maas_ray import MaaS, Settings
from maas_ray.registry import Registry
from tests.conftest import maas, post

HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Doubler(mlflow.pyfunc.PythonModel):
    """A PythonModel with a load step, registered by value (defined in a test module)."""

    def load_context(self, context: Any) -> None:
        self.factor = 2.0

    def predict(self, context: Any, model_input: np.ndarray, params: Any = None) -> np.ndarray:
        return np.asarray(model_input, dtype=np.float64) * self.factor


def test_sklearn_version_records_signature_digest_description_tags(
    registry: Registry, iris: dict[str, Any]
) -> None:
    v = registry.get_version("iris", iris["version"].version)
    assert HEX64.match(v.sha256 or "")
    assert v.description == "iris pipeline for the integration tests"
    assert v.tags["team"] == "tests"
    inputs = v.signature["inputs"] if v.signature else ""
    assert "petal length (cm)" in str(inputs)


def test_sdk_registers_a_tree_model_skops_would_not_load_unasked(
    client: MaaS, registry: Registry, tmp_path: Path
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(random_state=0).fit([[0.0], [1.0]], [0, 1])
    v = client.register("stump", tree, input_example=np.array([[0.5]]))
    local = registry.download_verified("stump", v.version, tmp_path)
    assert list(mlflow.pyfunc.load_model(str(local)).predict(np.array([[0.9]]))) == [1]


def test_digest_matches_the_stored_artifacts(
    registry: Registry, iris: dict[str, Any], tmp_path: Path
) -> None:
    from maas_ray.registry.digest import artifact_digest

    local = registry.download_verified("iris", iris["version"].version, str(tmp_path))
    assert artifact_digest(Path(local)) == iris["version"].sha256


def test_torch_module_registers_serves_and_undeploys(
    client: MaaS, registry: Registry, live: Settings, env: dict[str, str]
) -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1)).eval()
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    v = client.register("torchnet", net, input_example=x)
    assert HEX64.match(v.sha256 or "")
    client.deploy("torchnet", v.version)
    resp = post(live, "/v1/models/torchnet/predict", {"inputs": x.tolist()})
    assert resp.status_code == 200, resp.text
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(resp.json()["predictions"]), expected, rtol=1e-5)

    out = maas(env, "undeploy", "torchnet").stdout
    assert "undeployed" in out
    gone = post(live, "/v1/models/torchnet/predict", {"inputs": x.tolist()})
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_deployed"
    assert "torchnet" not in {s.model for s in client.status()}
    assert registry.get_spec("torchnet") is None
    assert [x.version for x in client.versions("torchnet")] == [v.version]  # still registered


def test_python_model_registers_and_serves(client: MaaS, live: Settings) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    v = client.register("doubler", Doubler(), input_example=x, description="doubles its input")
    client.deploy("doubler", v.version)
    assert client.predict("doubler", x.tolist()) == [[2.0, 4.0], [6.0, 8.0]]
    client.undeploy("doubler")


@pytest.fixture(scope="module")
def logged_run(
    live: Settings, iris_frame: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A model logged to a run on the platform's tracking server and one saved to a folder."""
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris_frame.data, iris_frame.target
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    folder = tmp_path_factory.mktemp("saved") / "tree"
    mlflow.sklearn.save_model(
        tree,
        str(folder),
        input_example=X.head(2),
        skops_trusted_types=["sklearn.tree._tree.Tree"],
        pip_requirements=["scikit-learn"],  # no inference: it reloads the model in a subprocess
    )
    # Log from a separate process so this test process keeps no global MLflow state.
    code = (
        "import sys, mlflow\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_artifacts(sys.argv[2], 'model')\n"
        "print(run.info.run_id)\n"
    )
    run_id = subprocess.run(
        [sys.executable, "-c", code, live.mlflow_uri, str(folder)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": live.mlflow_uri},
    ).stdout.split()[-1]
    return {"run_id": run_id, "folder": str(folder)}


def test_register_cli_from_a_run_uri(
    env: dict[str, str], client: MaaS, logged_run: dict[str, str]
) -> None:
    out = maas(
        env,
        "register",
        "tree",
        "--model-uri",
        f"runs:/{logged_run['run_id']}/model",
        "--description",
        "from a run",
        "--tag",
        "source=run",
    ).stdout
    assert "registered tree version 1" in out
    v = client.model("tree").versions[0]
    assert v.description == "from a run"
    assert v.tags["source"] == "run"
    assert HEX64.match(v.sha256 or "")
    assert v.signature


def test_register_cli_from_a_local_folder_and_models_uri(
    env: dict[str, str], client: MaaS, logged_run: dict[str, str]
) -> None:
    maas(env, "register", "tree", "--model-uri", logged_run["folder"])
    maas(env, "register", "tree2", "--model-uri", "models:/tree/1")
    versions = {v.version: v for v in client.versions("tree")}
    assert set(versions) >= {"1", "2"}
    # The same files give the same digest, whichever way they arrived.
    assert versions["1"].sha256 == versions["2"].sha256
    assert client.versions("tree2")[0].sha256 == versions["1"].sha256


def test_register_cli_rejects_a_bad_uri(env: dict[str, str]) -> None:
    for uri in ("runs:/0123456789abcdef/model", "/no/such/folder", "models:/nope/1"):
        proc = maas(env, "register", "bad", "--model-uri", uri, check=False)
        assert proc.returncode == 1, (uri, proc.stdout, proc.stderr)
        assert "error:" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_models_list_and_show_tables(
    env: dict[str, str], iris: dict[str, Any], seeded: Any
) -> None:
    listing = maas(env, "models", "list").stdout
    for name in ("iris", "sentiment", "tabular", "digits"):
        assert name in listing
    shown = maas(env, "models", "show", "iris").stdout
    assert "sha256" in shown
    assert (iris["version"].sha256 or "")[:16] in shown
    assert "team=tests" in shown
    missing = maas(env, "models", "show", "nope", check=False)
    assert missing.returncode == 1
    assert "not found" in missing.stderr
