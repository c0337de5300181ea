"""The ``images`` example: the ResNet, the image decoding and normalising, the pyfunc's
top-k answers on real PNG and JPEG bytes, and a replica answering raw image bodies
(in process, no Ray). A short training run gives the model every test shares."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from examples._common import TrainedExample
from examples.images import model as images
from examples.images import sample
from examples.images import train as images_train
from maas_ray.errors import InvalidInput, PredictionFailed
from maas_ray.serving import deployment
from maas_ray.serving.runtime import ModelRuntime
from tests.unit.conftest import PINS


@pytest.fixture(scope="module")
def trained() -> TrainedExample:
    torch.set_num_threads(1)
    return images_train.train(epochs=3)  # a few seconds; full training is 12 epochs


@pytest.fixture(scope="module")
def saved(trained: TrainedExample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "model"
    mlflow.pyfunc.save_model(
        str(path),
        python_model=trained.model,
        artifacts=trained.artifacts,
        input_example=trained.input_example,
        pip_requirements=PINS,  # no inference: MLflow would reload the model in a subprocess
    )
    return path


@pytest.fixture(scope="module")
def runtime(saved: Path) -> ModelRuntime:
    return ModelRuntime("images", "1", mlflow.pyfunc.load_model(str(saved)))


def _encode(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _answer(runtime: ModelRuntime, body: bytes, ctype: str) -> list[dict[str, Any]]:
    import orjson

    predictions: list[dict[str, Any]] = orjson.loads(runtime.predict_bytes(body, ctype))[
        "predictions"
    ]
    return predictions


# -- the network ---------------------------------------------------------------------------


def test_the_resnet_maps_32x32_images_to_one_logit_per_class() -> None:
    net = images.SmallResNet(n_classes=7).eval()
    with torch.inference_mode():
        assert net(torch.rand(5, 1, 32, 32)).shape == (5, 7)
        assert net(torch.rand(2, 32, 32)).shape == (2, 7)  # the channel is added
    assert 50_000 < sum(p.numel() for p in net.parameters()) < 120_000


def test_a_block_adds_its_input_back() -> None:
    x = torch.randn(2, 16, 8, 8)
    same = images.Block(16, 16).eval()
    torch.nn.init.zeros_(same.conv2.weight)  # the residual branch now adds nothing
    with torch.inference_mode():
        assert torch.allclose(same(x), torch.relu(x))
    wider = images.Block(16, 32, stride=2).eval()
    assert isinstance(wider.shortcut, torch.nn.Sequential)  # projected to the new shape
    with torch.inference_mode():
        assert wider(x).shape == (2, 32, 4, 4)


# -- images in -------------------------------------------------------------------------------


def test_dark_on_light_and_light_on_dark_give_the_same_input() -> None:
    digit = images_train.held_out_digit(3)
    light_on_dark = images.normalise(digit)
    dark_on_light = images.normalise(16.0 - digit)
    assert light_on_dark.shape == (32, 32)
    assert light_on_dark.dtype == np.float32
    assert 0.0 <= light_on_dark.min()
    assert light_on_dark.max() <= 1.0
    assert light_on_dark[:2].max() == 0.0  # the margin is background
    assert np.allclose(light_on_dark, dark_on_light, atol=1e-5)
    assert not images.normalise(np.full((10, 10), 7.0)).any()  # a blank image: all zeros


def test_the_ink_is_cropped_and_scaled_whatever_the_canvas() -> None:
    small = Image.new("L", (40, 40), 255)
    ImageDraw.Draw(small).ellipse((10, 5, 30, 35), outline=0, width=3)
    big = Image.new("L", (400, 300), 255)  # the same drawing, smaller, in a corner
    big.paste(small.resize((20, 20)), (300, 20))
    a = images.normalise(images.decode(_encode(small, "PNG")))
    b = images.normalise(images.decode(_encode(big, "PNG")))
    assert np.abs(a - b).mean() < 0.1


def test_transparency_is_laid_on_white_and_strings_may_carry_a_data_url() -> None:
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # transparent black
    ImageDraw.Draw(img).line((16, 4, 16, 28), fill=(0, 0, 0, 255), width=3)
    data = _encode(img, "PNG")
    gray = images.decode(data)
    assert gray[0, 0] == 255.0
    assert gray[16, 16] == 0.0
    assert images.image_bytes(f"data:image/png;base64,{_b64(data)}") == data
    assert images.image_bytes(data) == data


# -- the served model --------------------------------------------------------------------


def test_training_records_accuracy_and_packages_a_string_model(trained: TrainedExample) -> None:
    assert set(trained.artifacts or {}) == {"weights", "labels"}
    assert trained.metrics["n_train"] + trained.metrics["n_test"] == 1797
    assert trained.metrics["test_accuracy"] >= 0.8  # 3 epochs here; 12 give 0.997
    assert trained.metrics["test_accuracy_png"] >= 0.8
    assert trained.input_example.dtype.kind == "U"
    assert list(trained.input_example) == images_train.SAMPLE_INPUTS


def test_pngs_and_jpegs_get_the_top_classes_likeliest_first(runtime: ModelRuntime) -> None:
    (spec,) = runtime.input_schema.inputs  # type: ignore[union-attr]
    assert (spec.type.kind, spec.shape) == ("U", (-1,))  # type: ignore[union-attr]
    three, eight = (images_train.held_out_digit(d) for d in (3, 8))
    inputs = [
        _b64(images_train.render(three)),
        _b64(images_train.render(eight, size=200, fmt="JPEG")),
    ]
    import orjson

    answers = _answer(runtime, orjson.dumps({"inputs": inputs}), "application/json")
    assert [a["top"][0]["label"] for a in answers] == ["3", "8"]
    for answer in answers:
        top = answer["top"]
        assert len(top) == images.TOP_K
        probabilities = [t["probability"] for t in top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0.0 < sum(probabilities) <= 1.0 + 1e-6
        assert len({t["label"] for t in top}) == images.TOP_K


def test_a_raw_image_body_answers_as_its_base64_json_form(runtime: ModelRuntime) -> None:
    import orjson

    png = images_train.render(images_train.held_out_digit(8))
    raw = _answer(runtime, png, "image/png")
    assert raw == _answer(runtime, orjson.dumps({"inputs": [_b64(png)]}), "application/json")
    assert len(raw) == 1
    assert raw[0]["top"][0]["label"] == "8"


def test_a_photo_is_answered_too(runtime: ModelRuntime) -> None:
    import sklearn.datasets

    china = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"
    (answer,) = _answer(runtime, china.read_bytes(), "image/jpeg")
    assert len(answer["top"]) == images.TOP_K  # some digit: it knows nothing else


@pytest.mark.parametrize(
    ("body", "ctype", "error", "says"),
    [
        (b'{"inputs": ["not base64!"]}', "application/json", PredictionFailed, "not base64"),
        (b'{"inputs": ["aGVsbG8="]}', "application/json", PredictionFailed, "not an image"),
        (b"GIF89a but cut short", "image/png", PredictionFailed, "input 0"),
        (b'{"inputs": [1, 2]}', "application/json", InvalidInput, "must be strings"),
    ],
)
def test_a_bad_image_is_a_4xx_naming_the_input(
    runtime: ModelRuntime, body: bytes, ctype: str, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says) as info:
        runtime.predict_bytes(body, ctype)
    assert info.value.status_code == 422  # type: ignore[attr-defined]


def test_joined_requests_answer_as_alone_and_a_bad_one_fails_alone(
    runtime: ModelRuntime,
) -> None:
    pngs = [images_train.render(images_train.held_out_digit(d)) for d in (0, 3, 8)]
    parsed = [runtime.parse(p, "image/png") for p in pngs]
    alone = [runtime.predict_bytes(p, "image/png") for p in pngs]
    assert runtime.predict_many(parsed) == alone
    bad = runtime.parse(b"not an image", "image/png")
    answers = runtime.predict_many([parsed[0], bad, parsed[2]])
    assert answers[0] == alone[0]
    assert answers[2] == alone[2]
    assert isinstance(answers[1], PredictionFailed)


def test_a_replica_with_a_gpu_moves_the_model_to_cuda(
    trained: TrainedExample, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved: list[str] = []
    loaded_to: list[Any] = []
    real_load = torch.load

    def load(path: str, map_location: Any = None, **kwargs: Any) -> Any:
        loaded_to.append(map_location)
        return real_load(path, map_location="cpu", **kwargs)

    def to(self: torch.nn.Module, device: str) -> torch.nn.Module:
        moved.append(device)
        return self

    monkeypatch.setattr(torch, "load", load)
    monkeypatch.setattr(images.SmallResNet, "to", to)
    context = mlflow.pyfunc.PythonModelContext(artifacts=trained.artifacts, model_config={})
    for has_gpu, device in ((True, "cuda"), (False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda has_gpu=has_gpu: has_gpu)
        classifier = images.ImageClassifier()
        classifier.load_context(context)
        assert (classifier.device, moved[-1], loaded_to[-1]) == (device, device, device)


def test_the_sample_writes_each_form(tmp_path: Path) -> None:
    import json

    for name in ("d.png", "d.jpg", "d.json"):
        sample.write(tmp_path / name, digit=5)
    assert Image.open(tmp_path / "d.png").format == "PNG"
    assert Image.open(tmp_path / "d.jpg").format == "JPEG"
    body = json.loads((tmp_path / "d.json").read_text())
    assert base64.b64decode(body["inputs"][0]) == (tmp_path / "d.png").read_bytes()
    with pytest.raises(SystemExit):
        sample.write(tmp_path / "d.gif")


# -- explanations: saliency maps -------------------------------------------------------------


def _explain(runtime: ModelRuntime, body: bytes, ctype: str, fmt: str | None = None) -> Any:
    import orjson

    return orjson.loads(runtime.explain_bytes(body, ctype, fmt=fmt))


def test_an_image_is_explained_by_a_saliency_map_that_adds_up(runtime: ModelRuntime) -> None:
    import orjson

    from maas_ray.explain.answer import TOP_PIXELS

    inputs = [_b64(images_train.render(images_train.held_out_digit(d))) for d in (3, 8)]
    answer = _explain(runtime, orjson.dumps({"inputs": inputs}), "application/json")
    assert (answer["method"], answer["output"]) == ("captum.IntegratedGradients", "probability")
    assert answer["background_rows"] == 0  # against a black image
    rows = answer["explanations"]
    assert [r["class"] for r in rows] == ["3", "8"]
    with torch.inference_mode():
        black = torch.softmax(runtime.explainer().module(torch.zeros(1, 1, 32, 32)), 1)[0]
    x = images.to_batch(inputs)
    for r, pixels in zip(rows, x, strict=True):
        saliency = np.asarray(r["saliency"])
        assert saliency.shape == (images.SIZE, images.SIZE)
        # Completeness: the map adds up to the predicted class's probability minus a
        # black image's (integrated gradients' integral, up to its error: 6e-3 at
        # most on ten held-out digits when written; ReLUs make the path kinked).
        assert saliency.sum() == pytest.approx(r["prediction"] - r["baseline"], abs=0.02)
        assert r["baseline"] == pytest.approx(float(black[int(r["class"])]), abs=1e-5)
        # Where the image is as black as the baseline, nothing is attributed.
        assert np.all(saliency[pixels == 0] == 0)
        assert np.abs(saliency[pixels > images.INK]).sum() > 0.5 * np.abs(saliency).sum()
        # The attributions are the map's largest pixels, named (row, col).
        assert len(r["attributions"]) == TOP_PIXELS
        top = r["attributions"][0]
        row, col = (int(n) for n in top["feature"].strip("()").split(","))
        assert top["value"] == saliency[row, col]
        assert abs(top["value"]) == np.abs(saliency).max()
        assert "saliency_png" not in r  # only on request


def test_format_png_answers_each_map_as_a_png_heat_map(runtime: ModelRuntime) -> None:
    from maas_ray.explain.saliency import MIN_SIDE_PX

    png = images_train.render(images_train.held_out_digit(8))
    (r,) = _explain(runtime, png, "image/png", "png")["explanations"]
    assert r["class"] == "8"
    heat = Image.open(io.BytesIO(base64.b64decode(r["saliency_png"])))
    assert heat.format == "PNG"
    assert heat.size == (MIN_SIDE_PX, MIN_SIDE_PX)  # 32 x 32 map pixels, 8 x 8 squares each
    rgb = np.asarray(heat.convert("RGB"))
    saliency = np.asarray(r["saliency"])
    row, col = np.unravel_index(np.abs(saliency).argmax(), saliency.shape)
    strongest = rgb[row * 8 + 4, col * 8 + 4].tolist()
    assert strongest == ([255, 0, 0] if saliency[row, col] > 0 else [0, 0, 255])
    assert rgb[0, 0].tolist() == [255, 255, 255]  # the black margin: no contribution


@pytest.mark.parametrize("fmt", ["svg", "PNG", ""])
def test_an_unknown_format_is_a_400_before_the_body_is_read(
    runtime: ModelRuntime, fmt: str
) -> None:
    from maas_ray.errors import BadRequest

    with pytest.raises(BadRequest, match="for format") as info:
        runtime.explain_bytes(b"not even an image", "image/png", fmt=fmt)
    assert info.value.status_code == 400


# -- a replica answering image bodies ----------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_replica_batches_raw_image_bodies_and_fails_a_bad_one_alone(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray import serve

    from tests.unit.test_replica import PREDICT, _bearer, _client, _replica

    context = SimpleNamespace(_deployment_config=SimpleNamespace(max_ongoing_requests=64))
    monkeypatch.setattr(serve, "get_replica_context", lambda: context)
    # Serve keeps one batch queue per decorated method, tied to the event loop it first
    # ran on: this test's loop gets a queue of its own, and the next test finds the
    # queue and its sizes as they were (a queue of a closed loop never answers).
    queue = deployment.ModelServer.func_or_class._batched.set_max_batch_size.__self__
    for attr in ("_queue", "max_batch_size", "batch_wait_timeout_s"):
        monkeypatch.setattr(queue, attr, None if attr == "_queue" else getattr(queue, attr))
    batching = {"max_batch_size": 8, "batch_wait_timeout_s": 0.05}
    server = _replica(saved, monkeypatch, tmp_path, batching=batching)
    calls: list[int] = []
    predict_many = server.runtime.predict_many
    monkeypatch.setattr(
        server.runtime,
        "predict_many",
        lambda inputs: calls.append(len(inputs)) or predict_many(inputs),
    )
    digits = [3, 8] * 3
    pngs = [images_train.render(images_train.held_out_digit(d)) for d in digits]
    headers = _bearer("predict:iris")  # the helper's replica serves under the name iris
    async with await _client(server) as client:
        answers = await asyncio.gather(
            *(
                client.post(PREDICT, content=p, headers={**headers, "content-type": "image/png"})
                for p in pngs
            ),
            client.post(PREDICT, content=b"junk", headers={**headers, "content-type": "image/png"}),
            client.post(PREDICT, content=pngs[0], headers={**headers, "content-type": "image/gif"}),
        )
    tops = [a.json()["predictions"][0]["top"][0]["label"] for a in answers[:-2]]
    assert tops == [str(d) for d in digits]
    junk, gif = answers[-2:]
    assert (junk.status_code, junk.json()["code"]) == (422, "prediction_failed"), junk.text
    assert (gif.status_code, gif.json()["code"]) == (415, "unsupported_media_type"), gif.text
    assert sum(calls) == 7, calls  # the gif never parsed
    assert max(calls) > 1, calls  # requests were joined
