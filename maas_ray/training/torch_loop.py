"""What every Ray Train worker of a fine-tune runs (``TorchTrainer``'s loop).

Each worker downloads the parent itself (digest checked, so workers on other
nodes need nothing but the tracking URI), wraps its module for DDP
(``prepare_model``: gloo on CPU, NCCL on GPUs), and reads its shard of the rows
through Ray Data. After every epoch rank 0 saves a checkpoint (module, optimiser,
epoch) and logs the epoch's metrics to the training's MLflow run; a restarted
worker group (``FailureConfig``) resumes from the last checkpoint, logging into
the same run.

What one epoch does (``train_epoch``) and the held-out loss (``held_out_loss``) take
plain batches of ``{"x": tensor, "y": tensor}``, so they run without Ray as well:
the unit tests train through them in process.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
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
    if kind == "seq2seq":  # logits (B, T, V) against token ids (B, T); padding ignored
        from maas_ray.training.torch_model import PAD

        tokens = nn.CrossEntropyLoss(ignore_index=PAD)
        return lambda out, y: tokens(out.reshape(-1, out.shape[-1]), y.reshape(-1).long())
    mse = nn.MSELoss()
    return lambda out, y: mse(out.reshape(-1), y.reshape(-1).to(torch.float32))


def batch_loss(parent: Any, model: Any, x: Any, y: Any, loss_of: Any) -> tuple[Any, int]:
    """The loss of one batch and what it is a mean over (rows; target tokens for a
    seq2seq model, which is teacher forced: it reads ``y[:, :-1]``, is scored on
    ``y[:, 1:]``)."""
    if not parent.sequence:
        return loss_of(model(x), y), len(y)
    from maas_ray.training.torch_model import PAD

    # The rows are padded to the longest of all; cut this batch to its own longest.
    x = x[:, : max(1, int((x != PAD).sum(dim=1).max()))]
    y = y[:, : max(2, int((y != PAD).sum(dim=1).max()))]
    y_out = y[:, 1:]
    logits = parent.forward(model, x, y[:, :-1])
    return loss_of(logits, y_out), int((y_out != PAD).sum())


def train_epoch(
    parent: Any, model: Any, optimiser: Any, batches: Iterable[dict[str, Any]], loss_of: Any
) -> tuple[float, int, int]:
    """One pass over ``batches``: the mean loss (per row, or per target token), and the
    rows and the units (rows or tokens) it saw."""
    model.train()
    total, units, rows = 0.0, 0, 0
    for batch in batches:
        loss, n = batch_loss(parent, model, batch["x"], batch["y"], loss_of)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += float(loss.detach()) * n
        units += n
        rows += len(batch["y"])
    return total / max(units, 1), rows, units


def held_out_loss(parent: Any, model: Any, x: Any, y: Any, loss_of: Any, batch_size: int) -> float:
    """The loss on the held-out rows (eval mode, no gradients), in batches."""
    import torch

    model.eval()
    total, units = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            loss, n = batch_loss(
                parent, model, x[start : start + batch_size], y[start : start + batch_size], loss_of
            )
            total += float(loss) * n
            units += n
    return total / max(units, 1)


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
    x_dtype = torch.int64 if parent.sequence else torch.float32
    y_dtype = torch.int64 if parent.loss in ("cross_entropy", "seq2seq") else torch.float32
    for epoch in range(first, config["epochs"]):
        started = time.perf_counter()
        batches = shard.iter_torch_batches(
            batch_size=config["batch_size"],
            dtypes={"x": x_dtype, "y": y_dtype},
            device=device,
        )
        train_loss, seen, _ = train_epoch(parent, model, optimiser, batches, loss_of)
        seconds = time.perf_counter() - started
        held_loss = held_out_loss(parent, model, held_x, held_y, loss_of, config["batch_size"])
        metrics = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
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
