"""The example models over real HTTP: `deployments/models.yaml` serves all seven, each
predicts, and the explainable ones explain (attributions that add up)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from maas_ray import MaaS, Settings
from tests.conftest import FIGURES, QUICK, ROOT, auth, maas, post

MODELS_FILE = ROOT / "deployments" / "models.yaml"


@pytest.fixture(scope="module")
def served(
    seeded: Any, more_examples: dict[str, Any], client: MaaS, env: dict[str, str]
) -> Iterator[dict[str, Any]]:
    """Every example deployed from the repository's models.yaml; afterwards the three the
    session's seed does not serve are undeployed again (their CPUs back)."""
    out = maas(env, "apply", str(MODELS_FILE)).stdout
    try:
        yield {"applied": out, **more_examples}
    finally:
        for name in QUICK:
            client.undeploy(name)


def test_models_file_serves_every_example_and_applies_twice_unchanged(
    served: dict[str, Any], client: MaaS, env: dict[str, str]
) -> None:
    names = [m["model"] for m in yaml.safe_load(MODELS_FILE.read_text())["models"]]
    assert {"sentiment", "tabular", "digits", "minilm", *QUICK} <= set(names)
    rows = {r.model: r for r in client.status()}
    for name in names:
        assert rows[name].health == "RUNNING", rows.get(name)
    again = maas(env, "apply", str(MODELS_FILE)).stdout
    assert again.count("unchanged") == len(names), again


def test_legal_classifies_clauses_and_explains_by_the_words_that_decided(
    served: dict[str, Any], live: Settings
) -> None:
    legal = served["legal"]
    resp = post(live, "/v1/models/legal/predict", {"inputs": legal.SAMPLE_INPUTS})
    assert resp.status_code == 200, resp.text
    assert resp.json()["predictions"] == ["termination", "governing_law"]
    resp = post(live, "/v1/models/legal/explain", {"inputs": legal.SAMPLE_INPUTS})
    assert resp.status_code == 200, resp.text
    rows = resp.json()["explanations"]
    assert [row["class"] for row in rows] == ["termination", "governing_law"]
    for row in rows:
        total = sum(a["value"] for a in row["attributions"])
        assert total == pytest.approx(row["prediction"] - row["baseline"], abs=1e-6)
    words = [a["feature"] for a in rows[1]["attributions"][:5]]
    assert any("law" in word for word in words), words


def test_translate_turns_chinese_into_english(served: dict[str, Any], live: Settings) -> None:
    sentences = served["translate"].SAMPLE_INPUTS
    resp = post(live, "/v1/models/translate/predict", {"inputs": sentences})
    assert resp.status_code == 200, resp.text
    english = resp.json()["predictions"]
    assert len(english) == len(sentences)
    for text in english:  # a quick two-epoch version: English words, not yet the right ones
        assert text
        assert text.isascii(), english
    # An OIP client's own request parameters are the model's params, as v1's "params".
    greedy = post(
        live, "/v1/models/translate/predict", {"inputs": sentences, "params": {"beam": 1}}
    )
    assert greedy.status_code == 200, greedy.text
    tensor = {"name": "text", "shape": [len(sentences)], "datatype": "BYTES", "data": sentences}
    oip = post(live, "/v2/models/translate/infer", {"inputs": [tensor], "parameters": {"beam": 1}})
    assert oip.status_code == 200, oip.text
    assert oip.json()["outputs"][0]["data"] == greedy.json()["predictions"]
    wrong = post(
        live, "/v2/models/translate/infer", {"inputs": [tensor], "parameters": {"bean": 1}}
    )
    assert wrong.status_code == 422, wrong.text  # not a declared param: said, not dropped
    assert "beam" in wrong.json()["error"]


def test_images_classify_a_png_body_and_its_base64_form(
    served: dict[str, Any], live: Settings, client: MaaS
) -> None:
    from examples.images.train import held_out_digit, render

    png = render(held_out_digit(3, 0))
    raw = httpx.post(
        f"{live.serve_url}/v1/models/images/predict",
        content=png,
        headers={**auth(live), "content-type": "image/png"},
        timeout=60,
    )
    assert raw.status_code == 200, raw.text
    (answer,) = raw.json()["predictions"]
    top = answer["top"]
    assert len(top) == 3
    assert sum(t["probability"] for t in top) <= 1.0 + 1e-6
    encoded = base64.b64encode(png).decode("ascii")
    same = post(live, "/v1/models/images/predict", {"inputs": [encoded]})
    assert same.status_code == 200, same.text
    assert same.json()["predictions"] == raw.json()["predictions"]
    bad = post(live, "/v1/models/images/predict", {"inputs": ["bm90IGFuIGltYWdl"]})
    assert bad.status_code == 422, bad.text
    # the SDK asks for the saliency map drawn (format=png) and hands back its bytes
    (row,) = client.explain("images", [encoded], png=True).explanations
    heat = row.png()
    assert heat is not None
    assert heat.startswith(b"\x89PNG\r\n\x1a\n")
    assert str(row.label) == top[0]["label"]  # the class it explains: the top one


def test_the_readme_images_commands_work_as_written(
    served: dict[str, Any], live: Settings, admin_key: str, tmp_path: Path
) -> None:
    """README's images block (a sample PNG, then curl with it as the body, and the base64
    JSON form), run by a shell as a user would, pointed at this session's port."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("examples.images.sample digit.png", 1)[1].split("```", 1)[0]
    text = "python -m examples.images.sample digit.png" + block.replace("\\\n", " ")
    commands = [line.split("  #")[0].strip() for line in text.splitlines()]
    answers = []
    for command in [c for c in commands if c and not c.startswith("#")]:
        for python in (".venv/bin/python ", "python "):
            if command.startswith(python):
                command = sys.executable + " " + command.removeprefix(python)
        out = subprocess.run(
            ["bash", "-c", command.replace(":8000/", f":{live.serve_port}/")],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=tmp_path,
            env={**os.environ, "KEY": admin_key, "PYTHONPATH": str(ROOT)},
        ).stdout
        if command.startswith("curl"):
            answers.append(json.loads(out))
    assert len(answers) == 2, answers  # the raw PNG body, then the base64 JSON form
    for answer in answers:
        (row,) = answer["predictions"]
        assert [t["label"] in "0123456789" for t in row["top"]] == [True] * 3, answer


def test_the_readme_explain_on_tabular_ranks_attributions_that_add_up(
    seeded: Any, client: MaaS, live: Settings
) -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rows = data.data[:2].tolist()
    resp = post(live, "/v1/models/tabular/explain", {"inputs": rows})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["method"] == "captum.IntegratedGradients"
    assert body["background_rows"] == 100
    for row in body["explanations"]:
        values = [a["value"] for a in row["attributions"]]
        assert [abs(v) for v in values] == sorted((abs(v) for v in values), reverse=True)
        assert {a["feature"] for a in row["attributions"]} == set(data.feature_names)
        assert sum(values) == pytest.approx(row["prediction"] - row["baseline"], abs=0.02)
    predicted = post(live, "/v1/models/tabular/predict", {"inputs": rows}).json()
    assert [row["class"] for row in body["explanations"]] == predicted["predictions"]
    top = body["explanations"][0]["attributions"][0]
    # an embedding model has nothing to explain: a clear 422, never a 5xx
    minilm = post(live, "/v1/models/minilm/explain", {"inputs": ["a sentence"]})
    assert (minilm.status_code, minilm.json()["code"]) == (422, "not_explainable")
    answer = client.explain("sentiment", ["this book is terrible"])
    assert answer.explanations[0].label == "negative"
    FIGURES.append(
        f"explain tabular: 2 rows, top feature of row 0 {top['feature']} ({top['value']:+.3f})"
    )
