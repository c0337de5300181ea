"""MLflow's telemetry is off in every process that imports maas_ray (maas_ray/_quiet.py)."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = (
    "import os, maas_ray, mlflow.telemetry.utils as u; "
    "print(u.is_telemetry_disabled(), os.environ['MLFLOW_DISABLE_TELEMETRY'])"
)


def _run(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True)
    return out.stdout.strip()


def test_importing_maas_ray_turns_mlflow_telemetry_off_unless_set() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    # As a user's process: outside pytest and CI (where MLflow turns it off itself).
    for name in ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS"):
        env.pop(name, None)
    assert _run(env) == "True true"
    assert _run({**env, "MLFLOW_DISABLE_TELEMETRY": "false"}).endswith(" false")  # theirs wins
