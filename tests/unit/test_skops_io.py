"""registry/skops_io.py: skops.io without PyTorch, with the same trusted types."""

from __future__ import annotations

import json
import subprocess
import sys

PRINT_TRUSTED = (
    "import json, sys; {imp}; "
    "from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES as names; "
    "print(json.dumps({{'torch': 'torch' in sys.modules, 'names': sorted(names)}}))"
)


def _fresh(imp: str) -> dict[str, object]:
    """What a new interpreter sees after ``imp`` (each import runs once per process)."""
    code = PRINT_TRUSTED.format(imp=imp)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_skops_io_comes_without_torch_and_trusts_the_same_estimators() -> None:
    ours = _fresh("import maas_ray.registry.skops_io")
    plain = _fresh("import skops.io")
    assert ours["torch"] is False
    assert plain["torch"] is True  # what the stand-in saves: all of PyTorch
    assert ours["names"] == plain["names"]
    assert len(ours["names"]) > 100  # type: ignore[arg-type]


def test_the_real_array_api_package_imports_afterwards() -> None:
    code = (
        "import sys; from maas_ray.registry.skops_io import sio, ARRAY_API_TORCH; "
        "assert ARRAY_API_TORCH not in sys.modules; "
        "import sklearn.externals.array_api_compat.torch as t; print(hasattr(t, '__path__'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
