"""What `maas status` and a refused deploy say about a failed application (control/rows.py)."""

from __future__ import annotations

from maas_ray.control.rows import app_error

# What Serve reports for a replica whose model raised while loading (abridged).
REPLICA_FAILED = """Failed to update the deployments ['ModelServer'].
The deployment failed to start 3 times in a row. Error:
\x1b[36mray::ServeReplica:m:ModelServer.initialize_and_get_metadata()\x1b[39m (pid=21795)
  File "/usr/lib/python3.11/concurrent/futures/_base.py", line 456, in result
    return self.__get_result()
RuntimeError: Traceback (most recent call last):
  File "maas_ray/serving/runtime.py", line 132, in load_local
    model = mlflow.pyfunc.load_model(str(local), suppress_warnings=True)
  File "<dynamic-code>", line 5, in load_context
RuntimeError: weights are corrupt: boom-4711"""


def test_the_replicas_own_error_comes_first_without_terminal_colours() -> None:
    said = app_error({"message": "", "deployments": {"ModelServer": {"message": REPLICA_FAILED}}})
    first, *rest = said.splitlines()
    assert first == "RuntimeError: weights are corrupt: boom-4711"
    assert "\x1b" not in said
    assert rest[0] == "Failed to update the deployments ['ModelServer']."  # all of it follows


def test_a_message_without_a_traceback_is_kept_as_it_is() -> None:
    assert app_error({"message": "Deploying app 'm' failed: no room"}) == (
        "Deploying app 'm' failed: no room"
    )
    assert app_error({}) == "no message from Serve"
    module = "The build failed:\nModuleNotFoundError: No module named 'foo'"
    assert app_error({"message": module}).splitlines()[0] == (
        "ModuleNotFoundError: No module named 'foo'"
    )
