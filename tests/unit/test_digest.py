from __future__ import annotations

from pathlib import Path

from maas_ray.registry import artifact_digest


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_same_tree_same_digest_wherever_it_lies(tmp_path: Path) -> None:
    files = {"MLmodel": b"flavors: {}", "data/model.skops": b"\x00\x01"}
    a = _tree(tmp_path / "a", files)
    b = _tree(tmp_path / "elsewhere" / "b", files)
    assert artifact_digest(a) == artifact_digest(b)
    assert len(artifact_digest(a)) == 64


def test_a_changed_byte_or_a_renamed_file_changes_the_digest(tmp_path: Path) -> None:
    base = artifact_digest(_tree(tmp_path / "a", {"MLmodel": b"x", "w.bin": b"123"}))
    assert artifact_digest(_tree(tmp_path / "b", {"MLmodel": b"x", "w.bin": b"124"})) != base
    assert artifact_digest(_tree(tmp_path / "c", {"MLmodel": b"x", "v.bin": b"123"})) != base
    assert artifact_digest(_tree(tmp_path / "d", {"MLmodel": b"x"})) != base
