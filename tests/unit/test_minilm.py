"""Unit tests for the ``minilm`` seed example (no Ray, no MLflow server, no network).

The model is packaged once per module, saved with MLflow into a temporary folder and
loaded back as a pyfunc with the Hub switched off and every socket connection refused,
as on an air-gapped replica. Requests go through the platform's own parser and encoder.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import orjson
import pytest
from mlflow.types.schema import TensorSpec

from examples.minilm import model as minilm_model
from examples.minilm import train as minilm
from maas_ray.errors import InvalidInput
from maas_ray.serving.decode import parse_payload
from maas_ray.serving.encode import encode_predictions

DIM = 384
ANCHOR, PARAPHRASE = "A man is playing a guitar.", "Someone is playing an instrument."
UNRELATED = "Interest rates were raised by the central bank."


def _offline(mp: pytest.MonkeyPatch) -> None:
    """Hub off by the documented switches, and any attempt to connect anywhere fails."""
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args: object, **_: object) -> None:
        raise AssertionError(f"minilm tried to reach the network: {args[1:]}")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket.socket, "connect_ex", refuse)
    mp.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path, Any]]:
    """(TrainedExample, saved model folder, loaded pyfunc), all made offline."""
    path = tmp_path_factory.mktemp("minilm") / "model"
    with pytest.MonkeyPatch.context() as mp:
        _offline(mp)
        ex = minilm.train()
        try:
            mlflow.pyfunc.save_model(
                str(path),
                python_model=ex.model,
                artifacts=ex.artifacts,
                input_example=ex.input_example,
                # Given, so MLflow does not infer them by reloading the model in a subprocess.
                pip_requirements=["mlflow", "sentence-transformers"],
            )
        finally:
            for folder in {Path(p).parent for p in ex.artifacts.values()}:
                shutil.rmtree(folder, ignore_errors=True)
        loaded = mlflow.pyfunc.load_model(str(path))
        yield ex, path, loaded


def _ask(model: Any, body: bytes, content_type: str = "application/json") -> list[list[float]]:
    """One request through the platform's parser, the model and the platform's encoder."""
    data = parse_payload(body, content_type, model.metadata.get_input_schema())
    return orjson.loads(encode_predictions(model.predict(data)))["predictions"]


@pytest.mark.slow
def test_packaging_records_the_sanity_metrics(packaged: tuple[Any, Path, Any]) -> None:
    ex, _, _ = packaged
    assert ex.model == minilm.MODEL_CODE
    assert set(ex.artifacts) == {"model"}
    assert ex.description
    assert ex.metrics["embedding_dim"] == DIM
    assert ex.metrics["cosine_paraphrase"] > ex.metrics["cosine_unrelated"] + 0.3
    assert 80 < ex.metrics["artifact_mb"] < 100
    assert ex.input_example.dtype.kind == "U"
    assert list(ex.input_example) == minilm.SAMPLE_INPUTS


@pytest.mark.slow
def test_saved_model_holds_safetensors_and_no_pickle(packaged: tuple[Any, Path, Any]) -> None:
    _, path, model = packaged
    files = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    assert "artifacts/all-MiniLM-L6-v2/model.safetensors" in files
    assert "model.py" in files
    assert not [f for f in files if Path(f).suffix in {".bin", ".pkl", ".pt", ".pth"}]

    (spec,) = model.metadata.get_input_schema().inputs
    assert isinstance(spec, TensorSpec)
    assert (spec.type, spec.shape) == (np.dtype("str"), (-1,))
    (out,) = model.metadata.get_output_schema().inputs
    assert (out.type, out.shape) == (np.dtype("float32"), (-1, DIM))


@pytest.mark.slow
def test_inputs_give_one_unit_vector_of_384_floats_per_string(
    packaged: tuple[Any, Path, Any],
) -> None:
    _, _, model = packaged
    with pytest.MonkeyPatch.context() as mp:
        _offline(mp)
        predictions = _ask(model, orjson.dumps({"inputs": minilm.SAMPLE_INPUTS}))
    assert len(predictions) == 2
    assert all(len(row) == DIM and all(type(v) is float for v in row) for row in predictions)
    assert np.allclose(np.linalg.norm(predictions, axis=1), 1.0, atol=1e-4)


@pytest.mark.slow
def test_paraphrase_is_closer_than_an_unrelated_sentence(packaged: tuple[Any, Path, Any]) -> None:
    _, _, model = packaged
    vectors = np.asarray(_ask(model, orjson.dumps({"inputs": [ANCHOR, PARAPHRASE, UNRELATED]})))
    close, far = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert close > far + 0.3, (close, far)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ({"instances": [ANCHOR, UNRELATED]}, "application/json"),
        ({"dataframe_split": {"columns": ["text"], "data": [[ANCHOR], [UNRELATED]]}}, ""),
        ({"dataframe_records": [{"text": ANCHOR}, {"text": UNRELATED}]}, "application/json"),
        (f"text\n{ANCHOR}\n{UNRELATED}\n", "text/csv"),
    ],
)
def test_every_scoring_format_gives_the_same_vectors(
    packaged: tuple[Any, Path, Any], body: Any, content_type: str
) -> None:
    _, _, model = packaged
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    expected = _ask(model, orjson.dumps({"inputs": [ANCHOR, UNRELATED]}))
    assert np.allclose(_ask(model, raw, content_type), expected, atol=1e-5)


@pytest.mark.slow
def test_numbers_are_refused_not_embedded(packaged: tuple[Any, Path, Any]) -> None:
    _, _, model = packaged
    with pytest.raises(InvalidInput, match="must be strings"):
        _ask(model, b'{"inputs": [1, 2]}')


def test_copy_takes_safetensors_and_leaves_pickles_and_other_frameworks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in (
        "model.safetensors",
        "pytorch_model.bin",
        "tf_model.h5",
        "onnx/model.onnx",
        "openvino/openvino_model.xml",
        ".gitattributes",
        "config.json",
        "1_Pooling/config.json",
    ):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(name)
    copied = minilm.copy_model_folder(src, tmp_path / "dst")
    names = sorted(p.relative_to(tmp_path / "dst").as_posix() for p in copied)
    assert names == ["1_Pooling/config.json", "config.json", "model.safetensors"]
    assert (tmp_path / "dst" / "1_Pooling" / "config.json").read_text() == "1_Pooling/config.json"

    (src / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        minilm.copy_model_folder(src, tmp_path / "again")


def test_model_folder_comes_from_the_installed_package() -> None:
    folder = minilm.source_folder()
    assert (folder / "model.safetensors").is_file()
    assert (folder / "modules.json").is_file()


def test_a_replica_with_a_gpu_loads_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import sentence_transformers
    import torch

    calls: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, path: str, **kwargs: Any) -> None:
            calls.append({"path": path, **kwargs})

        def get_embedding_dimension(self) -> int:
            return DIM

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Recorder)
    context = mlflow.pyfunc.PythonModelContext(artifacts={"model": "/weights"}, model_config={})
    for has_gpu, device in ((True, "cuda"), (False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda has_gpu=has_gpu: has_gpu)
        minilm_model.MiniLMEmbedder().load_context(context)
        assert calls[-1] == {"path": "/weights", "device": device, "local_files_only": True}
