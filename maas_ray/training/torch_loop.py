"""What every Ray Train worker of a fine-tune runs (``TorchTrainer``'s loop).

Each worker downloads the parent itself (digest checked, so workers on other
nodes need nothing but the tracking URI), wraps its module for DDP
(``prepare_model``: gloo on CPU, NCCL on GPUs), and reads its shard of the rows
through Ray Data. After every epoch rank 0 saves a checkpoint (module, optimiser,
epoch) and logs the epoch's metrics to the training's MLflow run; a restarted
worker group (``FailureConfig``) resumes from the last checkpoint, logging into
the same run.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

STATE_FILE = "state.pt"


def loss_fn(kind: str) -> Any:
    """The loss for a ``finetune_loss`` name (see torch_model.LOSSES)."""
    import torch
    from torch import nn

    if kind == "binary_probability":
        bce = nn.BCELoss()
        return lambda out, y: bce(out.reshape(-1).clamp(1e-7, 1 - 1e-7), y.reshape(-1))
    if kind == "binary_logits":
        bce_logits = nn.BCEWithLogitsLoss()
        return lambda out, y: bce_logits(out.reshape(-1), y.reshape(-1))
    if kind == "cross_entropy":
        ce = nn.CrossEntropyLoss()
        return lambda out, y: ce(out, y.long())
    mse = nn.MSELoss()
    return lambda out, y: mse(out.reshape(-1), y.reshape(-1).to(torch.float32))


def read_state(checkpoint: Any) -> dict[str, Any] | None:
    """A checkpoint's saved state (module, optimiser, epoch), or None."""
    import torch

    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        state: dict[str, Any] = torch.load(
            Path(folder) / STATE_FILE, map_location="cpu", weights_only=True
        )
    return state


def train_loop(config: dict[str, Any]) -> None:
    """One worker's training (``train_loop_per_worker``)."""
    import ray.train
    import torch
    import torch.distributed as dist
    from ray.train.torch import prepare_model

    from maas_ray.settings import Settings
    from maas_ray.training.torch_model import open_parent

    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    torch.manual_seed(config["seed"] + rank)
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    with tempfile.TemporaryDirectory(prefix="maas-finetune-") as tmp:
        parent = open_parent(Settings(), config["name"], config["version"], Path(tmp))
    module = parent.module
    module.train()
    optimiser = torch.optim.Adam(module.parameters(), lr=config["lr"])
    first = 0
    state = read_state(ray.train.get_checkpoint())
    if state is not None:  # a restart after a failure: go on from the last epoch
        module.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimizer"])
        first = int(state["epoch"])
        if rank == 0:  # the run says it came back (and from where)
            from mlflow.tracking import MlflowClient

            MlflowClient(config["tracking_uri"]).log_metric(
                config["run_id"], "resumed_from_epoch", float(first), step=first
            )
    model = prepare_model(module)
    device = ray.train.torch.get_device()
    if rank == 0 and state is None:  # what the group trains on: gloo/cpu or nccl/cuda
        from mlflow.tracking import MlflowClient

        backend = dist.get_backend() if dist.is_initialized() else "none"
        tags = {"maas.backend": str(backend), "maas.device": device.type}
        for key, value in tags.items():
            MlflowClient(config["tracking_uri"]).set_tag(config["run_id"], key, value)
    loss_of = loss_fn(parent.loss)
    shard = ray.train.get_dataset_shard("train")
    held_x = torch.as_tensor(config["held_x"], device=device)
    held_y = torch.as_tensor(config["held_y"], device=device)
    y_dtype = torch.int64 if parent.loss == "cross_entropy" else torch.float32
    for epoch in range(first, config["epochs"]):
        model.train()
        started, total, seen = time.perf_counter(), 0.0, 0
        batches = shard.iter_torch_batches(
            batch_size=config["batch_size"],
            dtypes={"x": torch.float32, "y": y_dtype},
            device=device,
        )
        for batch in batches:
            loss = loss_of(model(batch["x"]), batch["y"])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch["y"])
            seen += len(batch["y"])
        seconds = time.perf_counter() - started
        model.eval()
        with torch.no_grad():
            held_loss = float(loss_of(model(held_x), held_y))
        metrics = {
            "epoch": epoch + 1,
            "train_loss": total / max(seen, 1),
            "held_out_loss": held_loss,
            "samples": seen,
            "samples_per_s": seen / seconds if seconds > 0 else 0.0,
            "epoch_seconds": seconds,
        }
        if rank == 0:
            _log_epoch(config, metrics, ctx.get_world_size())
            with tempfile.TemporaryDirectory(prefix="maas-ckpt-") as folder:
                torch.save(
                    {"model": module.state_dict(), "optimizer": optimiser.state_dict(),
                     "epoch": epoch + 1},
                    os.path.join(folder, STATE_FILE),
                )  # fmt: skip
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
        else:
            ray.train.report(metrics)


def _log_epoch(config: dict[str, Any], metrics: dict[str, float], world: int) -> None:
    """Rank 0's epoch metrics, into the training's run (the same one after a restart)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(config["tracking_uri"])
    step = int(metrics["epoch"])
    for key in ("train_loss", "held_out_loss", "samples_per_s", "epoch_seconds"):
        client.log_metric(config["run_id"], key, float(metrics[key]), step=step)
    # The throughput of the whole group: each worker sees its shard at about this rate.
    client.log_metric(
        config["run_id"], "group_samples_per_s", float(metrics["samples_per_s"]) * world, step=step
    )
    client.log_metric(config["run_id"], "epoch", float(step), step=step)
