"""On a real NVIDIA GPU (marked `gpu`, skipped without one): minilm encodes on CUDA
as it does on the CPU, and a fine-tune whose worker takes a GPU trains there with
NCCL and registers its child."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from examples.minilm import train as minilm
from examples.tabular.new_rows import new_rows
from maas_ray import MaaS, Settings

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU"),
]
SENTENCES = ["A man is playing a guitar.", "Someone is playing an instrument."]


def test_minilm_encodes_on_cuda_as_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = str(minilm.source_folder())
    gpu = SentenceTransformer(folder, device="cuda", local_files_only=True)
    cpu = SentenceTransformer(folder, device="cpu", local_files_only=True)
    assert next(gpu.parameters()).device.type == "cuda"
    on_gpu = gpu.encode(SENTENCES, normalize_embeddings=True)
    on_cpu = cpu.encode(SENTENCES, normalize_embeddings=True)
    assert on_gpu.shape == (2, 384)
    assert np.min(np.sum(on_gpu * on_cpu, axis=1)) > 0.999  # the same vectors


def test_a_gpu_worker_fine_tunes_with_nccl(
    client: MaaS, live: Settings, seeded: dict[str, Any], tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    new_rows(rows=300).to_csv(rows, index=False)
    parent = client.model("tabular").aliases["production"]
    # half a GPU: the session's iris may hold the other half
    result = client.finetune("tabular", rows, workers=1, num_gpus_per_worker=0.5, epochs=2)
    tags = MlflowClient(live.mlflow_uri).get_run(result.run_id).data.tags
    assert tags["maas.backend"] == "nccl"
    assert tags["maas.device"] == "cuda"
    assert result.parent is not None
    assert result.parent["version"] == parent
    assert client.model("tabular").versions[0].tags["maas.parent_version"] == parent
