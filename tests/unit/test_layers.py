"""The package's floors: docs/architecture.md's table of parts, bottom up, read here and
checked against every import in maas_ray/ (lazy ones inside functions too). A part may
import the parts of its own row and of the rows above; every part has a row."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "maas_ray"


def floors() -> dict[str, int]:
    """Each part's row in the architecture page's table (0: the ground floor)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("## The parts, bottom up", 1)[1].split("\n\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    found: dict[str, int] = {}
    for floor, row in enumerate(rows):
        for name in re.findall(r"`([a-z_]+)(?:\.py|/)`", row.split("|")[1]):
            found[name] = floor
    return found


def part_of(module: str) -> str:
    """``maas_ray.serving.deployment`` -> ``serving``; the package itself -> ``""``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else ""


def package_parts() -> set[str]:
    """The package's parts: its modules and subpackages (not its root)."""
    parts = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return parts | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def imports() -> set[tuple[str, str, str]]:
    """(importing part, imported part, file) for every import between two parts."""
    parts = package_parts()
    edges = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        here = part_of(module.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = (
                    [f"maas_ray.{a.name}" for a in node.names]
                    if node.module == "maas_ray"
                    else [node.module]
                )
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                there = part_of(target)
                if there not in parts:  # a name the package's root exports: the root
                    continue
                if target.startswith("maas_ray.") and here and there != here:
                    edges.add((here, there, str(path.relative_to(ROOT))))
    return edges


def test_every_part_has_a_row() -> None:
    rows = floors()
    parts = package_parts()
    assert parts - set(rows) == set(), "parts the architecture table does not place"
    assert set(rows) - parts == set(), "rows naming a part the package does not have"


def test_no_import_runs_back_up() -> None:
    rows = floors()
    upward = sorted(
        f"{where}: {here} (row {rows[here]}) imports {there} (row {rows[there]})"
        for here, there, where in imports()
        if rows[there] > rows[here]
    )
    assert upward == []


def test_the_two_the_front_door_issue_named() -> None:
    """errors.py imports nothing from security/, control/ nothing from serving/."""
    edges = {(here, there) for here, there, _ in imports()}
    assert ("errors", "security") not in edges
    assert ("control", "serving") not in edges
