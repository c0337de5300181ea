"""Unit tests for the seed example models (no Ray, no MLflow server).

Each example is trained, saved with MLflow into ``tmp_path``, loaded back as a pyfunc and
fed ``{"inputs": SAMPLE_INPUTS}`` parsed exactly as MLflow's scoring server parses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import orjson
import pytest
from mlflow.pyfunc.scoring_server import infer_and_parse_data
from mlflow.types.schema import TensorSpec
from sklearn.datasets import load_breast_cancer, load_digits

from examples._common import TrainedExample
from tests.unit.conftest import PINS


def _serve(model_dir: Path, inputs: list) -> tuple[Any, mlflow.pyfunc.PyFuncModel]:
    """Load the saved model and predict on a JSON request, as the scoring server does."""
    model = mlflow.pyfunc.load_model(str(model_dir))
    parsed = infer_and_parse_data({"inputs": inputs}, model.metadata.get_input_schema())
    return model.predict(parsed), model


def _explained(model_dir: Path, ex: TrainedExample, inputs: list) -> Any:
    """Explanations of ``inputs`` as a replica answers them, with the example's background
    rows stored in the folder as ``register(background=...)`` stores them."""
    from maas_ray.registry.background import FILE, dump_background
    from maas_ray.serving.runtime import ModelRuntime

    if ex.background is not None:
        (model_dir / FILE).write_bytes(dump_background(ex.background))
    runtime = ModelRuntime.load_local("example", "1", model_dir)
    answer = runtime.explain(
        runtime.parse(orjson.dumps({"inputs": inputs}), "application/json").data
    )
    for row in answer.explanations:
        values = [abs(a.value) for a in row.attributions]
        assert values == sorted(values, reverse=True)  # ranked
    return answer


def total_close(row: Any) -> bool:
    """The attributions add up to the explained output minus the baseline."""
    total = sum(a.value for a in row.attributions)
    return bool(total == pytest.approx(row.prediction - row.baseline, abs=1e-6))


def _true_labels(data: Any, rows: list[list[float]]) -> list[int]:
    """Look the sample rows up in the dataset and return their targets."""
    labels = []
    for row in rows:
        (matches,) = np.nonzero((data.data == np.asarray(row)).all(axis=1))
        assert len(matches) >= 1
        labels.append(int(data.target[matches[0]]))
    return labels


def _save_code_model(ex: TrainedExample, path: Path) -> None:
    assert isinstance(ex.model, str)
    assert ex.model.endswith("model.py")
    assert Path(ex.model).is_file()
    assert ex.artifacts
    assert all(Path(p).is_file() for p in ex.artifacts.values())
    mlflow.pyfunc.save_model(
        str(path),
        python_model=ex.model,
        artifacts=ex.artifacts,
        input_example=ex.input_example,
        signature=ex.signature,
        pip_requirements=PINS,  # no inference: MLflow would reload the model in a subprocess
    )


def _assert_tensor_input(model: mlflow.pyfunc.PyFuncModel, dtype: str, shape: tuple) -> None:
    (spec,) = model.metadata.get_input_schema().inputs
    assert isinstance(spec, TensorSpec)
    assert spec.type == np.dtype(dtype)
    assert spec.shape == shape


def test_sentiment(tmp_path: Path) -> None:
    from examples.sentiment import train as sentiment

    ex = sentiment.train()
    assert ex.artifacts is None
    assert ex.description
    assert ex.metrics["test_accuracy"] >= 0.8
    assert ex.input_example.ndim == 1
    assert ex.input_example.dtype.kind == "U"
    assert sentiment.SAMPLE_INPUTS == ["这本书很好看", "this book is terrible"]

    texts, labels = sentiment.load_data()
    assert len(texts) >= 300
    assert set(labels) == {"positive", "negative"}
    assert abs(labels.count("positive") - labels.count("negative")) <= 10

    mlflow.sklearn.save_model(
        ex.model, str(tmp_path / "model"), input_example=ex.input_example, pip_requirements=PINS
    )
    out, model = _serve(tmp_path / "model", sentiment.SAMPLE_INPUTS)
    _assert_tensor_input(model, "str", (-1,))
    assert list(out) == ["positive", "negative"]

    answer = _explained(tmp_path / "model", ex, sentiment.SAMPLE_INPUTS)
    assert [row.label for row in answer.explanations] == ["positive", "negative"]
    terrible = answer.explanations[1]
    assert total_close(terrible)
    # character n-grams (the model reads Chinese too): those of "terrible" decide
    assert all(a.feature in " this book is terrible " for a in terrible.attributions[:3])


def test_tabular(tmp_path: Path) -> None:
    from examples.tabular import train as tabular

    ex = tabular.train()
    assert ex.metrics["test_accuracy"] >= 0.93
    assert set(ex.artifacts or {}) == {"weights", "scaler"}
    assert ex.input_example.dtype == np.float32
    assert ex.input_example.shape == (2, 30)
    assert all(isinstance(v, float) for row in tabular.SAMPLE_INPUTS for v in row)

    _save_code_model(ex, tmp_path / "model")
    out, model = _serve(tmp_path / "model", tabular.SAMPLE_INPUTS)
    _assert_tensor_input(model, "float32", (-1, 30))

    data = load_breast_cancer()
    expected = [str(data.target_names[t]) for t in _true_labels(data, tabular.SAMPLE_INPUTS)]
    assert expected == ["malignant", "benign"]
    assert out == expected
    assert all(type(label) is str for label in out)

    # Integrated gradients against the 100 background rows stored with the version.
    answer = _explained(tmp_path / "model", ex, tabular.SAMPLE_INPUTS)
    assert (answer.method, answer.background_rows) == ("captum.IntegratedGradients", 100)
    assert [row.label for row in answer.explanations] == expected
    for row in answer.explanations:
        total = sum(a.value for a in row.attributions)
        assert total == pytest.approx(row.prediction - row.baseline, abs=0.02)
        assert {a.feature for a in row.attributions} == set(data.feature_names)


def test_digits(tmp_path: Path) -> None:
    from examples.digits import train as digits

    ex = digits.train()
    assert ex.metrics["test_accuracy"] >= 0.9
    assert set(ex.artifacts or {}) == {"weights"}
    assert ex.input_example.dtype == np.float32
    assert ex.input_example.shape == (2, 64)
    assert all(isinstance(v, float) for row in digits.SAMPLE_INPUTS for v in row)

    _save_code_model(ex, tmp_path / "model")
    out, model = _serve(tmp_path / "model", digits.SAMPLE_INPUTS)
    _assert_tensor_input(model, "float32", (-1, 64))

    assert out == _true_labels(load_digits(), digits.SAMPLE_INPUTS)
    assert all(type(label) is int for label in out)

    # A row is an 8x8 image (image_shape): its explanation is a map of its pixels.
    answer = _explained(tmp_path / "model", ex, digits.SAMPLE_INPUTS)
    assert [row.label for row in answer.explanations] == [str(d) for d in out]
    for row, pixels in zip(answer.explanations, digits.SAMPLE_INPUTS, strict=True):
        saliency = np.asarray(row.saliency)
        assert saliency.shape == (8, 8)
        assert saliency.sum() == pytest.approx(row.prediction - row.baseline, abs=0.01)
        assert np.all(saliency[np.asarray(pixels).reshape(8, 8) == 0] == 0)  # zeros: none


@pytest.fixture(scope="module")
def legal_example() -> TrainedExample:
    from examples.legal import train as legal

    return legal.train()


def test_legal(legal_example: TrainedExample, tmp_path: Path) -> None:
    import skops.io

    from examples.legal import train as legal

    ex = legal_example
    assert ex.artifacts is None
    assert ex.description
    # Out-of-family figures (0.714 / 0.714 when written): no template seen in training.
    assert ex.metrics["test_accuracy"] >= 0.6
    assert ex.metrics["test_f1_macro"] >= 0.6
    assert ex.metrics["n_rows"] >= 600
    assert ex.input_example.ndim == 1
    assert ex.input_example.dtype.kind == "U"

    # Saved as the registry saves it (skops, the pipeline's own types trusted).
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(ex.model)) or None
    mlflow.sklearn.save_model(
        ex.model,
        str(tmp_path / "model"),
        input_example=ex.input_example,
        skops_trusted_types=trusted,
        pip_requirements=PINS,
    )
    out, model = _serve(tmp_path / "model", legal.SAMPLE_INPUTS)
    _assert_tensor_input(model, "str", (-1,))
    assert list(out) == ["termination", "governing_law"]

    answer = _explained(tmp_path / "model", ex, legal.SAMPLE_INPUTS)
    assert [row.label for row in answer.explanations] == ["termination", "governing_law"]
    assert all(total_close(row) for row in answer.explanations)
    assert "laws" in [a.feature for a in answer.explanations[1].attributions[:3]]


def test_legal_dataset_is_the_generators_and_balanced() -> None:
    from examples.legal import make_data
    from examples.legal import train as legal

    texts, labels = legal.load_data()
    clauses = make_data.generate()
    assert texts == [c.text for c in clauses]  # make_data.py rewrites the committed CSV
    assert labels == [c.label for c in clauses]
    assert len(texts) >= 600
    assert len(set(texts)) == len(texts)
    counts = {label: labels.count(label) for label in set(labels)}
    assert len(counts) >= 8
    assert min(counts.values()) >= 60


def test_legal_folds_hold_out_whole_template_families() -> None:
    from examples.legal import make_data
    from examples.legal import train as legal

    texts, labels = legal.load_data()
    folds = legal.family_folds(texts, labels)
    family = make_data.families()
    fold_of: dict[str, set[int]] = {}
    for text, fold in zip(texts, folds, strict=True):
        fold_of.setdefault(family[text], set()).add(int(fold))
    assert all(len(f) == 1 for f in fold_of.values())
    for label in set(labels):
        assert {int(f) for f, y in zip(folds, labels, strict=True) if y == label} == set(
            range(legal.FOLDS)
        )


def test_legal_top_words_add_up_to_the_decision_function(
    legal_example: TrainedExample,
) -> None:
    from examples.legal import train as legal

    model = legal_example.model
    text = (
        "The Customer may terminate this agreement for convenience on thirty days "
        "written notice, and upon termination all fees accrued become due."
    )
    assert model.predict([text])[0] == "termination"
    words = legal.top_words(model, text, k=5)
    assert len(words) == 5
    assert any("terminat" in w for w, _ in words)
    assert [c for _, c in words] == sorted((c for _, c in words), reverse=True)
    assert all(c > 0 for _, c in words)

    label, intercept, terms = legal.contributions(model, text)
    assert label == "termination"
    row = list(model.classes_).index(label)
    decision = model.decision_function([text])[0][row]
    assert intercept + sum(c for _, c in terms) == pytest.approx(decision, abs=1e-6)
    assert legal.top_words(model, text, k=2) == words[:2]


@pytest.mark.parametrize(
    "name", ["sentiment", "tabular", "digits", "minilm", "legal", "translate", "images"]
)
def test_train_module_interface(name: str) -> None:
    import importlib

    module = importlib.import_module(f"examples.{name}.train")
    assert module.NAME == name
    assert isinstance(module.SAMPLE_INPUTS, list)
    assert len(module.SAMPLE_INPUTS) == 2
    assert callable(module.train)
    assert callable(module.main)


def test_seed_summary_shows_vectors_as_shape_and_first_values() -> None:
    from examples.seed import preview

    embeddings = [[0.5, -0.25, 0.125] + [0.0] * 381, [1.0] * 384]
    assert preview(embeddings) == "2 x 384 values; row 0: [0.5000, -0.2500, 0.1250, ...]"
    assert preview(["positive", "negative"]) == '["positive", "negative"]'
    assert preview([[1, 2]]) == "[[1, 2]]"


# -- translate: corpus, tokens, training, decoding, packaging --------------------------


def test_translate_corpus_is_the_scripts_output_and_deterministic(tmp_path: Path) -> None:
    from examples.translate import make_corpus
    from examples.translate import train as translate

    pairs = translate.load_pairs()
    assert 3000 <= len(pairs) <= 5000
    # One translation per sentence, no sentence twice (on either side).
    assert len({zh for zh, _ in pairs}) == len(pairs)
    assert len({en for _, en in pairs}) == len(pairs)
    for zh, en in pairs:
        assert any("\u4e00" <= c <= "\u9fff" for c in zh), zh
        assert zh[-1] in "。？", zh
        assert en[-1] in ".?", en
        assert en.isascii(), en
        assert en[0].isupper(), en
        assert "  " not in en, en
        assert (zh[-1] == "？") == (en[-1] == "?"), (zh, en)

    # The committed file is exactly what the script writes, run after run.
    rows = make_corpus.generate()
    assert rows == pairs
    make_corpus.write(tmp_path / "pairs.tsv", rows)
    assert (tmp_path / "pairs.tsv").read_bytes() == translate.DATA_PATH.read_bytes()
    assert make_corpus.generate(50, seed=1) == make_corpus.generate(50, seed=1)
    assert make_corpus.generate(50, seed=1) != make_corpus.generate(50, seed=2)


def test_translate_corpus_numbers_agree() -> None:
    from examples.translate.make_corpus import number_en, number_zh

    assert [number_zh(n) for n in (1, 2, 10, 12, 20, 22, 99)] == [
        "一", "两", "十", "十二", "二十", "二十二", "九十九"
    ]  # fmt: skip
    assert number_zh(2, counted=False) == "二"
    assert [number_en(n) for n in (1, 12, 20, 25, 99)] == [
        "one", "twelve", "twenty", "twenty-five", "ninety-nine"
    ]  # fmt: skip


def test_translate_split_holds_out_unseen_sentences() -> None:
    from examples.translate import train as translate

    pairs = translate.load_pairs()
    train_pairs, test_pairs = translate.split(pairs)
    assert len(test_pairs) == round(len(pairs) * translate.TEST_SIZE)
    assert len(train_pairs) + len(test_pairs) == len(pairs)
    assert not {zh for zh, _ in train_pairs} & {zh for zh, _ in test_pairs}
    assert translate.split(pairs) == (train_pairs, test_pairs)  # seeded
    # The sample inputs are held-out sentences; the model never trained on them.
    held = {zh for zh, _ in test_pairs}
    assert all(s in held for s in translate.SAMPLE_INPUTS)

    # A pair whose Chinese is held out is dropped from training, duplicates included.
    doubled = pairs[:20] + [(zh, en + " again") for zh, en in pairs[:20]]
    tr, te = translate.split(doubled, test_size=0.25)
    assert not {zh for zh, _ in tr} & {zh for zh, _ in te}


def test_translate_tokens_round_trip() -> None:
    from examples.translate.model import SPECIALS, Vocab, detokenize, en_tokens, zh_tokens

    sentence = "Mr. Zhang's train arrives at twenty-five past seven o'clock, doesn't it?"
    tokens = en_tokens(sentence)
    assert tokens[:4] == ["Mr", ".", "Zhang's", "train"]
    assert {"twenty", "-", "o'clock"} <= set(tokens)
    assert detokenize(tokens) == sentence
    assert zh_tokens("你 好，世界。") == ["你", "好", "，", "世", "界", "。"]

    vocab = Vocab.build([["b", "a", "b"], ["c"]])
    assert vocab.itos == [*SPECIALS, "b", "a", "c"]
    assert vocab.encode(["a", "zzz"]) == [5, 1]
    assert vocab.decode([4, 0, 5, 3, 6]) == ["b", "a"]  # specials left out, stops at end
    with pytest.raises(ValueError, match="starts with"):
        Vocab(["a", "b"])


def test_translate_bleu() -> None:
    from examples.translate.train import bleu

    refs = ["He did not go to the library yesterday.", "Will you go to Beijing tomorrow?"]
    assert bleu(refs, refs) == pytest.approx(100.0)
    assert bleu(["Hello there.", "Nothing alike."], refs) < 5.0


def test_translate_model_learns_and_decodes() -> None:
    """A small model memorises 32 pairs in a few seconds; greedy and beam decode."""
    import torch

    from examples.translate import train as translate
    from examples.translate.model import (
        Seq2Seq,
        Vocab,
        beam_search,
        detokenize,
        en_tokens,
        greedy,
        zh_tokens,
    )
    from examples.translate.model import (
        translate as run,
    )

    torch.manual_seed(0)
    pairs = translate.split(translate.load_pairs())[0][:32]
    src = Vocab.build(zh_tokens(zh) for zh, _ in pairs)
    tgt = Vocab.build(en_tokens(en) for _, en in pairs)
    model = Seq2Seq(len(src), len(tgt), emb=32, hidden=64, dropout=0.0)
    losses = translate.fit(model, translate._encode(pairs, src, tgt), epochs=60, lr=1e-2)
    assert losses[-1] < losses[0] / 5

    sources = [zh for zh, _ in pairs]
    greedy_out = run(model, src, tgt, sources, beam=1)
    beam_out = run(model, src, tgt, sources, beam=4)
    for out in (greedy_out, beam_out):
        assert len(out) == len(pairs)
        assert all(type(t) is str for t in out)
        assert sum(h == en for h, (_, en) in zip(out, pairs, strict=True)) >= 24

    # Beam width 1 is greedy decoding; an empty input gives an empty string.
    ids = [src.encode(zh_tokens(zh)) for zh in sources[:5]]
    assert [detokenize(tgt.decode(beam_search(model, i, beam=1))) for i in ids] == [
        detokenize(tgt.decode(g)) for g in greedy(model, ids)
    ]
    assert run(model, src, tgt, ["", "  ", sources[0]], beam=3) == ["", "", beam_out[0]]
    # Characters it never saw are unknown, not an error.
    assert type(run(model, src, tgt, ["龘龘龘"], beam=1)[0]) is str


def test_translate_quick_train_and_pyfunc_round_trip(tmp_path: Path) -> None:
    import torch

    from examples.translate import train as translate
    from examples.translate.model import Seq2Seq, Vocab, load_spec
    from examples.translate.model import translate as run

    ex = translate.train(epochs=2, limit=200)
    assert set(ex.artifacts or {}) == {"weights", "vocab"}
    assert ex.description
    assert ex.metrics["n_train"] == 200
    assert ex.metrics["final_train_loss"] < ex.metrics["first_train_loss"]
    assert 0.0 <= ex.metrics["bleu_greedy"] <= 100.0
    assert 0.0 <= ex.metrics["bleu_beam"] <= 100.0
    assert ex.input_example.ndim == 1
    assert ex.input_example.dtype.kind == "U"
    assert list(ex.input_example) == translate.SAMPLE_INPUTS

    # The same module the pyfunc builds, straight from the artifacts.
    assert ex.artifacts is not None
    spec = load_spec(ex.artifacts["vocab"])
    src, tgt = Vocab(spec["zh"]), Vocab(spec["en"])
    module = Seq2Seq(len(src), len(tgt), **spec["config"])
    module.load_state_dict(torch.load(ex.artifacts["weights"], weights_only=True))
    expected = {
        b: run(module, src, tgt, translate.SAMPLE_INPUTS, beam=b) for b in (1, spec["beam"])
    }

    _save_code_model(ex, tmp_path / "model")
    out, model = _serve(tmp_path / "model", translate.SAMPLE_INPUTS)
    _assert_tensor_input(model, "str", (-1,))
    assert out == expected[spec["beam"]]
    assert all(type(t) is str for t in out)

    # "beam" is declared in the signature: params reach predict, within 1..16.
    (param,) = model.metadata.get_params_schema().params
    assert (param.name, param.default) == ("beam", spec["beam"])
    loaded = model
    inputs = np.array(translate.SAMPLE_INPUTS, dtype=str)
    assert loaded.predict(inputs, params={"beam": 1}) == expected[1]
    with pytest.raises(ValueError, match="got 17 for beam: 1 \\(greedy\\) to 16"):
        loaded.predict(inputs, params={"beam": 17})
    assert loaded.predict(inputs) == expected[spec["beam"]]

    # As a replica answers a request that picks the beam, or a wrong one.
    from maas_ray.errors import InvalidInput, PredictionFailed
    from maas_ray.serving.runtime import ModelRuntime

    runtime = ModelRuntime.load_local("translate", "1", tmp_path / "model")
    for beam in (1, spec["beam"]):
        body = orjson.dumps({"inputs": translate.SAMPLE_INPUTS, "params": {"beam": beam}})
        answer = orjson.loads(runtime.predict_bytes(body, "application/json"))
        assert answer == {"predictions": expected[beam]}
    too_wide = orjson.dumps({"inputs": translate.SAMPLE_INPUTS, "params": {"beam": 17}})
    with pytest.raises(PredictionFailed, match="got 17 for beam") as failed:
        runtime.predict_bytes(too_wide, "application/json")
    assert failed.value.status_code == 422
    with pytest.raises(InvalidInput, match="declares 'beam'"):
        runtime.parse(orjson.dumps({"inputs": ["你好"], "params": {"width": 2}}), None)
