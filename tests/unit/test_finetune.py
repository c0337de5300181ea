"""The pure parts of fine-tuning: what a version's MLmodel says (packaging, input
width or columns), which versions open for training, how rows and labels become
the module's input and targets, the losses, and the spec and job arguments.

Models are saved to local folders with MLflow (no server, no cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from maas_ray.errors import BadRequest
from maas_ray.jobs import finetune as job
from maas_ray.training.torch_loop import loss_fn
from maas_ray.training.torch_model import CODE, PYTORCH, inspect, load, rows_of
from maas_ray.training_spec import FinetuneBody, FinetuneSpec
from tests.unit.conftest import PINS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tabular example's packaging, untrained weights, saved to a folder."""
    from examples.tabular.model import BreastCancerMLP

    tmp = tmp_path_factory.mktemp("tabular")
    torch.manual_seed(0)
    weights = tmp / "weights.pt"
    torch.save(BreastCancerMLP().state_dict(), weights)
    scaler = tmp / "scaler.json"
    classes = ["malignant", "benign"]
    scaler.write_text(json.dumps({"mean": [0.0] * 30, "scale": [2.0] * 30, "classes": classes}))
    folder = tmp / "model"
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=str(ROOT / "examples" / "tabular" / "model.py"),
        artifacts={"weights": str(weights), "scaler": str(scaler)},
        input_example=np.zeros((2, 30), dtype=np.float32),
        pip_requirements=PINS,  # no inference: MLflow would reload the model in a subprocess
    )
    return folder


def _pytorch(tmp: Path, outputs: int, columns: list[str] | None = None) -> Path:
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, outputs))
    example: object = np.zeros((2, 3), dtype=np.float32)
    if columns is not None:
        example = pd.DataFrame(np.zeros((2, 3), dtype=np.float32), columns=columns)
    folder = tmp / f"torch-{outputs}-{bool(columns)}"
    # pt2 (the default) traces with an array; named columns need the pickle format
    fmt = "pickle" if columns is not None else "pt2"
    mlflow.pytorch.save_model(
        module, str(folder), input_example=example, serialization_format=fmt, pip_requirements=PINS
    )
    return folder


def test_the_platforms_packaging_opens_with_its_hooks(tabular: Path) -> None:
    layout = inspect(tabular / "MLmodel", "tabular", "1")
    assert layout.kind == CODE
    assert layout.width == 30
    assert layout.columns is None
    assert set(layout.artifacts) == {"weights", "scaler"}
    parent = load(layout, tabular, "v1")
    assert parent.loss == "binary_probability"
    assert parent.task == "classification"
    assert isinstance(parent.module, nn.Module)
    # names, 0/1 numbers and their strings all map to the class index
    assert parent.targets(np.array(["malignant", "benign", 0, 1], dtype=object)).tolist() == [
        0,
        1,
        0,
        1,
    ]
    with pytest.raises(BadRequest, match="none of malignant, benign"):
        parent.targets(np.array(["healthy"], dtype=object))
    rows = np.full((4, 30), 4.0, dtype=np.float32)
    assert np.allclose(parent.inputs(rows), 2.0)  # standardised: (4 - 0) / 2
    served = mlflow.pyfunc.load_model(str(tabular))
    predicted = parent.predictions(served, rows)
    assert predicted.dtype == np.int64
    assert set(predicted.tolist()) <= {0, 1}


def test_rows_must_fit_the_signature(tabular: Path) -> None:
    layout = inspect(tabular / "MLmodel", "tabular", "1")
    good = pd.DataFrame(np.zeros((3, 30)), columns=[f"f{i}" for i in range(30)])
    assert rows_of(layout, good, "v1").shape == (3, 30)
    with pytest.raises(BadRequest, match="takes 30 features per row; the data has 29"):
        rows_of(layout, good.iloc[:, :29], "v1")
    text = good.assign(f3="x")  # the packaging's finetune_inputs reads the rows, and refuses
    parent = load(layout, tabular, "v1")
    with pytest.raises(BadRequest, match="rows the model cannot take"):
        parent.inputs(rows_of(layout, text, "v1"))
    holes = good.astype(float)
    holes.iloc[1, 2] = np.nan
    with pytest.raises(BadRequest, match="empty cells"):
        rows_of(layout, holes, "v1")


def test_mlflow_pytorch_models_take_their_loss_from_the_output(tmp_path: Path) -> None:
    three = _pytorch(tmp_path, 3)
    classes = load(inspect(three / "MLmodel", "m", "1"), three, "")
    assert classes.layout.kind == PYTORCH
    assert classes.loss == "cross_entropy"
    assert classes.targets(np.array([0, 2, 1])).dtype == np.int64
    with pytest.raises(BadRequest, match="integers"):
        classes.targets(np.array([0.5, 1.0]))
    number = _pytorch(tmp_path, 1)
    assert load(inspect(number / "MLmodel", "m", "1"), number, "").loss == "mse"


def test_named_columns_are_taken_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    folder = _pytorch(tmp_path, 2, ["a", "b", "c"])
    layout = inspect(folder / "MLmodel", "m", "1")
    assert layout.columns == ["a", "b", "c"]
    frame = pd.DataFrame({"c": [3.0], "a": [1.0], "b": [2.0], "extra": [9.0]})
    assert rows_of(layout, frame, "v1").tolist() == [[1.0, 2.0, 3.0]]
    with pytest.raises(BadRequest, match="lacks the model's input columns: b"):
        rows_of(layout, frame.drop(columns=["b"]), "v1")
    with pytest.raises(BadRequest, match="not numbers: c"):  # mlflow.pytorch: numbers only
        rows_of(layout, frame.assign(c="x"), "v1")
    assert load(layout, folder, "v1").loss == "cross_entropy"


def test_other_models_are_refused_in_one_line(tmp_path: Path) -> None:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    folder = tmp_path / "sk"
    mlflow.sklearn.save_model(
        fitted, str(folder), serialization_format="cloudpickle", pip_requirements=PINS
    )
    with pytest.raises(BadRequest, match="is a sklearn model: maas finetune trains PyTorch"):
        inspect(folder / "MLmodel", "iris", "3")


@pytest.mark.parametrize(
    ("kind", "out", "target"),
    [
        ("binary_probability", torch.tensor([0.9, 0.1]), torch.tensor([1.0, 0.0])),
        ("binary_logits", torch.tensor([[3.0], [-3.0]]), torch.tensor([1.0, 0.0])),
        ("cross_entropy", torch.tensor([[5.0, 0.0], [0.0, 5.0]]), torch.tensor([0, 1])),
        ("mse", torch.tensor([[1.0], [2.0]]), torch.tensor([1.0, 2.0])),
    ],
)
def test_losses_are_small_for_right_answers(
    kind: str, out: torch.Tensor, target: torch.Tensor
) -> None:
    assert float(loss_fn(kind)(out, target)) < 0.12


def test_the_spec_and_the_route_body() -> None:
    spec = FinetuneSpec(name="tabular", data="rows.csv")
    assert (spec.workers, spec.epochs, spec.max_failures, spec.from_version) == (1, 2, 1, None)
    for bad in ({"workers": 0}, {"epochs": 0}, {"lr": 0}, {"max_failures": 0}, {"name": "_x"}):
        with pytest.raises(ValueError, match="validation error for FinetuneSpec"):
            FinetuneSpec.model_validate({"name": "tabular", "data": "rows.csv", **bad})
    with pytest.raises(ValueError, match="one of accuracy"):
        FinetuneSpec(name="t", data="d.csv", promote_if_better="speed")
    body = FinetuneBody(data="runs:/x/data.csv", workers=2)
    assert body.spec("tabular").name == "tabular"
    assert FinetuneBody(name="tabular", data="d.csv").spec("tabular").name == "tabular"
    with pytest.raises(ValueError, match="the body names 'digits', the path 'tabular'"):
        FinetuneBody(name="digits", data="d.csv").spec("tabular")


def test_the_job_takes_flags_or_a_spec(capsys: pytest.CaptureFixture[str]) -> None:
    spec = job.parse(["tabular", "--data", "/tmp/rows.csv", "--workers", "2", "--epochs", "1"])
    assert (spec.name, spec.data, spec.workers, spec.epochs) == ("tabular", "/tmp/rows.csv", 2, 1)
    whole = FinetuneSpec(name="digits", data="d.csv", lr=0.01).model_dump_json()
    assert job.parse(["--spec", whole]).lr == 0.01
    with pytest.raises(SystemExit):
        job.parse(["tabular"])
    with pytest.raises(SystemExit) as exit_:
        job.parse(["tabular", "--data", "d.csv", "--workers", "0"])
    assert exit_.value.code == 1
    assert "workers" in capsys.readouterr().err


def test_the_reviews_packaging_embeds_texts_for_its_head(tmp_path: Path) -> None:
    """examples/minilm_reviews: texts in (a 1-D string signature), minilm embeddings to the head."""
    from examples.minilm_reviews.model import SentimentHead

    torch.save(SentimentHead(2).state_dict(), tmp_path / "weights.pt")
    (tmp_path / "labels.json").write_text(json.dumps({"classes": ["negative", "positive"]}))
    folder = tmp_path / "model"
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=str(ROOT / "examples" / "minilm_reviews" / "model.py"),
        artifacts={
            "weights": str(tmp_path / "weights.pt"),
            "labels": str(tmp_path / "labels.json"),
        },
        input_example=np.asarray(["good", "bad"], dtype=object),
        pip_requirements=PINS,
    )
    layout = inspect(folder / "MLmodel", "reviews", "1")
    assert (layout.kind, layout.flat, layout.width) == (CODE, True, 1)
    parent = load(layout, folder, "v1")
    assert parent.loss == "cross_entropy"
    frame = pd.DataFrame({"text": ["a fine book", "这本书很无聊", "dull"]})
    rows = rows_of(layout, frame, "v1")
    assert parent.inputs(rows).shape == (3, 384)
    assert parent.targets(np.array(["positive", "negative"])).tolist() == [1, 0]
    with pytest.raises(BadRequest, match="'meh' is none of negative, positive"):
        parent.targets(np.array(["meh"]))

    class Served:  # the loaded PythonModel as a pyfunc answers (one minilm load, not two)
        def predict(self, data: Any) -> Any:
            return parent.python_model.predict(None, data)

    assert parent.predictions(Served(), rows).shape == (3,)


def test_a_tuning_space_is_checked_and_becomes_ray_tunes() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from maas_ray.training.tune import checked_space, space
    from maas_ray.training_spec import TuningSpec

    spec = TuningSpec(
        name="wine",
        data="d.csv",
        pipeline="pkg.mod:build",
        search={"logisticregression__C": {"loguniform": [0.01, 10]}, "x__n": [[1, 2], [1, 3]]},
        metric="f1",
        trials=3,
    )
    tuned = space(spec)
    assert tuned["x__n"] == {"grid_search": [(1, 2), (1, 3)]}  # lists become tuples
    assert 0.01 <= tuned["logisticregression__C"].sample() <= 10
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    with pytest.raises(BadRequest, match="the pipeline has no parameter x__n"):
        checked_space(spec, pipeline)
    ok = spec.model_copy(update={"search": {"logisticregression__C": [0.1, 1.0]}})
    checked_space(ok, pipeline)
    for bad, words in (
        ({"search": {"a": {"normal": [0, 1]}}}, "a list of values or one of"),
        ({"search": {"a": {"uniform": [2, 1]}}}, "low < high"),
        ({"search": {"a": {"loguniform": [0, 1]}}}, "low must be above 0"),
        ({"metric": "speed"}, "metric: got 'speed'"),
        ({"search": {"a": list(range(201))}}, "200 at most"),
    ):
        fields = {"name": "w", "data": "d.csv", "pipeline": "p.m:f", "search": {"a": [1]}, **bad}
        with pytest.raises(ValueError, match=words):
            TuningSpec.model_validate(fields)


# -- seq2seq: the translate example fine-tuned in process ------------------------------


@pytest.fixture(scope="module")
def translate_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/translate quickly trained (2 epochs, 200 pairs), saved as registered."""
    from examples.translate import train as translate

    ex = translate.train(epochs=2, limit=200)
    folder = tmp_path_factory.mktemp("translate") / "model"
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=ex.model,
        artifacts=ex.artifacts,
        input_example=ex.input_example,
        signature=ex.signature,  # declares the beam param; the child keeps it
        pip_requirements=PINS,
    )
    return folder


def _new_pairs(n: int) -> pd.DataFrame:
    """``text,label`` rows the parent never saw: training pairs past its first 200."""
    from examples.translate import train as translate

    pairs = translate.split(translate.load_pairs())[0][200 : 200 + n]
    return pd.DataFrame({"text": [zh for zh, _ in pairs], "label": [en for _, en in pairs]})


def _batches(x: np.ndarray, y: np.ndarray, size: int, seed: int) -> list[dict[str, Any]]:
    """What iter_torch_batches hands a worker: shuffled x/y tensors."""
    order = np.random.default_rng(seed).permutation(len(y))
    return [
        {"x": torch.as_tensor(x[order[s : s + size]]), "y": torch.as_tensor(y[order[s : s + size]])}
        for s in range(0, len(y), size)
    ]


def test_a_seq2seq_model_fine_tunes_in_process(
    translate_parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's own epoch (train_epoch) on 120 new pairs: the token loss falls,
    parent and child are scored with BLEU, the child's weights load back."""
    from maas_ray.training.evaluate import scores
    from maas_ray.training.finetune import _truth
    from maas_ray.training.fit import split_rows
    from maas_ray.training.torch_loop import held_out_loss, train_epoch
    from maas_ray.training.torch_model import save_child

    layout = inspect(translate_parent / "MLmodel", "translate", "1")
    assert (layout.kind, layout.flat) == (CODE, True)
    parent = load(layout, translate_parent, "v1")
    assert (parent.loss, parent.task) == ("seq2seq", "sequence")

    frame = _new_pairs(120)
    X, y = frame[["text"]], frame["label"]
    rows = rows_of(layout, X, "v1")
    inputs, targets = parent.inputs(rows), parent.targets(y.to_numpy())
    assert inputs.dtype == targets.dtype == np.int64
    assert (targets[:, 0] == 2).all()  # BOS first, as the example's own training
    train_rows, test_rows = split_rows(y, parent.task, 0.2, 0)  # sentences: unstratified
    truth = _truth(parent, targets[test_rows], y.to_numpy()[test_rows])
    assert truth.tolist() == y.to_numpy()[test_rows].tolist()
    served = mlflow.pyfunc.load_model(str(translate_parent))
    before = scores(parent.task, truth, parent.predictions(served, rows[test_rows]))
    assert set(before) == {"bleu"}

    torch.manual_seed(0)
    module = parent.module
    optimiser = torch.optim.Adam(module.parameters(), lr=3e-3)
    loss_of = loss_fn(parent.loss)
    x_train, y_train = inputs[train_rows], targets[train_rows]
    held_x, held_y = torch.as_tensor(inputs[test_rows]), torch.as_tensor(targets[test_rows])
    held = [held_out_loss(parent, module, held_x, held_y, loss_of, 32)]
    losses = []
    for epoch in range(2):
        batches = _batches(x_train, y_train, 32, epoch)
        loss, seen, tokens = train_epoch(parent, module, optimiser, batches, loss_of)
        assert seen == len(train_rows)
        assert tokens > seen  # a mean per target token, not per sentence
        losses.append(loss)
        held.append(held_out_loss(parent, module, held_x, held_y, loss_of, 32))
    assert losses[-1] < losses[0]
    assert held[-1] < held[0]

    monkeypatch.chdir(tmp_path)  # a SQLite store's artifacts land beside it
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        # This store's own experiment: an earlier test's active one lives in another store.
        mlflow.set_experiment("seq2seq-finetune")
        with mlflow.start_run():
            info = save_child(parent, module.state_dict(), parent.model_input(rows[:2]))
        child = mlflow.pyfunc.load_model(info.model_uri)
    finally:
        mlflow.set_tracking_uri(None)
    after = scores(parent.task, truth, parent.predictions(child, rows[test_rows]))
    assert set(after) == {"bleu"}
    assert 0.0 <= before["bleu"] <= 100.0
    assert 0.0 <= after["bleu"] <= 100.0
    assert child.metadata.get_params_schema() == served.metadata.get_params_schema()
    loaded = child.unwrap_python_model().model.state_dict()
    for key, value in module.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_sentences_split_unstratified() -> None:
    """Every label a different sentence: a stratified split fails, the sequence one not."""
    from maas_ray.training.fit import split_rows

    y = _new_pairs(50)["label"]
    with pytest.raises(BadRequest, match="classes with one row"):
        split_rows(y, "classification", 0.2, 0)
    train, test = split_rows(y, "sequence", 0.2, 0)
    assert (len(train), len(test)) == (40, 10)
    assert sorted([*train, *test]) == list(range(50))


def test_seq2seq_loss_ignores_padding_and_targets_are_checked(translate_parent: Path) -> None:
    right = torch.full((1, 3, 5), -9.0)
    right[0, [0, 1], [4, 3]] = 9.0  # the words 4, 3; then padding, whatever it scores
    assert float(loss_fn("seq2seq")(right, torch.tensor([[4, 3, 0]]))) < 1e-3
    bare = load(inspect(translate_parent / "MLmodel", "t", "1"), translate_parent, "v1")
    bare.python_model = None  # no hook: labels as given, and one number a row is no sequence
    with pytest.raises(BadRequest, match="token ids"):
        bare.targets(np.array([1, 2]))
    with pytest.raises(ValueError, match="one of accuracy"):
        FinetuneSpec(name="t", data="d.csv", promote_if_better="chrf")
    assert FinetuneSpec(name="t", data="d.csv", promote_if_better="bleu").promote_if_better


def test_the_epochs_logged_after_the_last_poll_are_said_too(tmp_path: Path) -> None:
    """The run ends between two polls of the epoch watcher: its last look at the
    run still says every epoch logged (the CLI showed 10 of 12 once)."""
    import threading

    from mlflow.tracking import MlflowClient

    from maas_ray.settings import Settings
    from maas_ray.training import finetune

    store = f"sqlite:///{tmp_path / 'store.db'}"
    client = MlflowClient(store)
    run_id = client.create_run(client.create_experiment("watched")).info.run_id
    for step in (1, 2, 3):
        client.log_metric(run_id, "train_loss", 1.0 / step, step=step)
        client.log_metric(run_id, "held_out_loss", 2.0 / step, step=step)
    done = threading.Event()
    done.set()  # finished before the watcher's first poll
    said: list[str] = []
    finetune._watch(Settings(tracking_uri=store), run_id, 3, said.append, done)
    assert [line.split(":")[0] for line in said] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
