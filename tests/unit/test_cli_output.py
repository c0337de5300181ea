"""What the CLI prints when stdout is a pipe, and the aliases `maas models show` lists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.entities.model_registry.registered_model_alias import RegisteredModelAlias

from maas_ray.cli import _output as o
from maas_ray.control.status import ModelStatus, NodeResources
from maas_ray.registry._convert import _model_info, _version_info
from maas_ray.registry.models import VersionInfo

LONG = "sentiment-classifier-multilingual-v2-big"  # 40 characters
SIGNATURE = {
    "inputs": json.dumps([{"name": "text", "type": "string"}]),
    "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1]}}]),
}
ANSI = re.compile(r"\x1b\[")


def _status(model: str, health: str = "RUNNING") -> ModelStatus:
    return ModelStatus(
        model=model,
        version="3",
        alias="production",
        replicas_running=1,
        replicas_target=2,
        replicas_spec="1-4",
        num_cpus=0.5,
        num_gpus=0.0,
        health=health,
        route=f"/v1/models/{model}/predict",
    )


def test_plain_table_keeps_long_names_whole_and_aligned() -> None:
    rows = [o.status_cells(_status(LONG)), o.status_cells(_status("iris", "DEPLOYING"))]
    text = o.render_plain("deployments", o.STATUS_COLUMNS, rows)
    lines = text.splitlines()
    assert len(LONG) == 40
    assert lines[0] == "deployments"
    assert lines[1].split()[:2] == ["model", "alias"]
    assert lines[2].startswith(LONG + "  @production -> v3")
    assert "…" not in text  # nothing ellipsised, as rich does at 80 columns
    assert not ANSI.search(text)  # the green/yellow health is text only
    # every column starts at the same offset on every line
    for col, value in (("health", "RUNNING"), ("route", "/v1/models/")):
        start = lines[1].index(col)
        assert lines[2][start:].startswith(value)
    assert lines[3][lines[1].index("health") :].startswith("DEPLOYING")
    assert all(line == line.rstrip() for line in lines)


def test_plain_table_puts_a_multiline_signature_on_one_line() -> None:
    version = _version_info(
        ModelVersion(
            LONG,
            "2",
            creation_timestamp=0,
            tags=[],
            aliases=["production"],
        )
    ).model_copy(update={"signature": SIGNATURE, "sha256": "ab" * 32})
    signature = o.signature_text(version.signature)
    assert signature == "inputs: text:string\noutputs: tensorfloat32(-1,)"
    text = o.render_plain(LONG, o.VERSION_COLUMNS, [o.version_cells(version)])
    lines = text.splitlines()
    assert len(lines) == 3  # title, header, the one version: no folded cells
    assert "inputs: text:string; outputs: tensorfloat32(-1,)" in lines[2]
    cells = re.split(r"\s{2,}", lines[2])
    assert cells[:4] == [
        "2",
        "1970-01-01 00:00:00",
        "production",
        "inputs: text:string; outputs: tensorfloat32(-1,)",
    ]
    assert "abababababababab" in lines[2]  # the digest, shortened to 16 as on a terminal


def test_plain_table_aligns_wide_characters_by_screen_columns() -> None:
    text = o.render_plain("t", ("name", "x"), [["模型", "1"], ["abcdefg", "2"]])
    header, first, second = text.splitlines()[1:]
    # '模型' takes 4 terminal columns, so its '1' sits under the 'x' as the '2' does
    assert first == "模型" + " " * 5 + "1"
    assert second.endswith("  2")
    assert header == "name     x"


def test_cluster_row_shows_used_of_total_and_the_head() -> None:
    node = NodeResources(
        node_id="n1",
        address="10.0.0.5",
        is_head=True,
        cpu_used=2.5,
        cpu_total=4.0,
        gpu_used=0.0,
        gpu_total=1.0,
        memory_used_bytes=3 * 2**30 + 2**29,
        memory_total_bytes=16 * 2**30,
    )
    assert o.node_cells(node) == ["10.0.0.5 (head)", "2.5/4", "0/1", "3.5/16.0"]


def test_rich_table_does_not_read_brackets_as_markup() -> None:
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(o.render_rich("audit log", ("detail",), [["bad input [red]x[/red]"]]))
    assert "bad input [red]x[/red]" in console.export_text()


def _model(aliases: dict[str, str]) -> RegisteredModel:
    return RegisteredModel("iris", aliases=[RegisteredModelAlias(a, v) for a, v in aliases.items()])


def _versions(*numbers: str) -> list[VersionInfo]:
    # search_model_versions answers with aliases=[]: that is what _model_info must fill
    return [
        _version_info(ModelVersion("iris", n, creation_timestamp=int(n), aliases=[]))
        for n in numbers
    ]


def test_models_show_lists_each_versions_aliases() -> None:
    info = _model_info(
        _model({"production": "1", "staging": "2", "canary": "2"}), _versions("2", "1", "3")
    )
    aliases = {v.version: v.aliases for v in info.versions}
    assert aliases == {"1": ["production"], "2": ["canary", "staging"], "3": []}
    assert info.aliases == {"production": "1", "staging": "2", "canary": "2"}
    row = o.version_cells(info.versions[0])
    assert row[2] == "canary, staging"  # the aliases column of `maas models show`


def test_aliases_mlflow_already_gave_are_kept() -> None:
    (given,) = _versions("1")
    given = given.model_copy(update={"aliases": ["production"]})
    info = _model_info(_model({"production": "1"}), [given])
    assert info.versions[0].aliases == ["production"]


def test_piped_tables_are_plain_and_apart(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    o._plain_tables.clear()
    console = Console()  # capsys's stdout is no terminal: the plain form
    o.print_table(console, "deployments", ("model", "health"), [[LONG, o.Styled("OK", "green")]])
    o.print_table(console, "cluster", ("node",), [["10.0.0.5 (head)"]])
    o.print_table(console, "audit log", ("detail",), [], "no audit records yet")
    o.print_json({"models": [{"model": "模型"}]})
    text = capsys.readouterr().out
    assert not ANSI.search(text)
    tables, document = text.split("no audit records yet\n")
    assert tables.splitlines() == [
        "deployments",
        "model" + " " * 37 + "health",
        LONG + "  OK",
        "",
        "cluster",
        "node",
        "10.0.0.5 (head)",
    ]
    assert json.loads(document) == {"models": [{"model": "模型"}]}
    assert "模型" in document  # ensure_ascii=False: names stay readable


EXPLAINED = {
    "model": "tabular",
    "version": "2",
    "method": "shap.TreeExplainer",
    "output": "probability",
    "background_rows": 50,
    "explanations": [
        {
            "prediction": 0.93,
            "baseline": 0.41,
            "class": "benign",
            "attributions": [
                {"feature": "worst radius", "value": 0.3},
                {"feature": "mean texture", "value": -0.05},
                {"feature": "[x] smoothness", "value": 0.01},
            ],
        }
    ],
}


def test_explain_prints_a_table_per_row_ranked_by_contribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from maas_ray.cli import models
    from maas_ray.cli.main import app
    from maas_ray.explain.answer import Explanations

    answer = Explanations.model_validate(EXPLAINED)
    asked: list[tuple[str, Any, Any]] = []

    class Sdk:
        def explain(
            self, name: str, payload: Any = None, version: Any = None, png: bool = False
        ) -> Explanations:
            asked.append((name, payload, version))
            assert png is False
            return answer

    monkeypatch.setattr(models, "sdk", Sdk)
    result = CliRunner().invoke(app, ["explain", "tabular", "--json", "[[1, 2, 3]]", "--top", "2"])
    assert result.exit_code == 0, result.output
    assert asked == [("tabular", {"inputs": [[1, 2, 3]]}, None)]
    lines = result.output.strip().splitlines()  # a gap if another test printed a table
    assert "probability of class benign 0.93, baseline 0.41" in lines[0]
    assert lines[1].split() == ["feature", "contribution"]
    assert [line.split()[0] for line in lines[2:]] == ["worst", "mean"]  # top 2, ranked
    assert "+0.3" in lines[2]
    assert "-0.05" in lines[3]
    as_json = CliRunner().invoke(app, ["explain", "tabular", "--json", "[[1]]", "-o", "json"])
    assert json.loads(as_json.output) == EXPLAINED  # "class", as the API spells it


def test_explain_png_writes_each_rows_heat_map_into_the_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import base64

    from typer.testing import CliRunner

    from maas_ray.cli import models
    from maas_ray.cli.main import app
    from maas_ray.explain.answer import Explanations

    drawn = b"\x89PNG\r\n\x1a\n-a-heat-map"
    row = {**EXPLAINED["explanations"][0], "saliency_png": base64.b64encode(drawn).decode()}
    answer = Explanations.model_validate({**EXPLAINED, "explanations": [row, row]})
    asked: list[bool] = []

    class Sdk:
        def explain(
            self, name: str, payload: Any = None, version: Any = None, png: bool = False
        ) -> Explanations:
            asked.append(png)
            return answer

    monkeypatch.setattr(models, "sdk", Sdk)
    folder = tmp_path / "maps"
    result = CliRunner().invoke(
        app, ["explain", "images", "--json", "[[1]]", "--png", str(folder), "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    assert asked == [True]  # the SDK asked for format=png
    assert sorted(p.name for p in folder.iterdir()) == ["images-row-0.png", "images-row-1.png"]
    assert (folder / "images-row-1.png").read_bytes() == drawn
    assert answer.explanations[0].png() == drawn
