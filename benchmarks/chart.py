"""The PNG of a ``benchmarks/serving.py`` run: throughput, p99, batching, autoscaling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402

SERVERS = ("bare Starlette", "mlflow models serve", "maas_ray")
COLORS = {"bare Starlette": "#9e9e9e", "mlflow models serve": "#1f77b4", "maas_ray": "#d62728"}


def draw(results: dict[str, Any], path: Path) -> None:
    """Four panels from the results dict of one run."""
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    models = list(results["serving"])
    width = 0.8 / len(SERVERS)
    for ax, key, label in (
        (axes[0][0], "rps", "requests/s (higher is better)"),
        (axes[0][1], "p99_ms", "p99 latency, ms (lower is better)"),
    ):
        for i, server in enumerate(SERVERS):
            values = [results["serving"][m]["runs"][server][key] for m in models]
            xs = [j + (i - 1) * width for j in range(len(models))]
            ax.bar(xs, values, width, label=server, color=COLORS[server])
        ax.set_xticks(range(len(models)), models)
        ax.set_title(label)
        ax.legend(fontsize=8)
    batching = results.get("batching")
    ax = axes[1][0]
    if batching:
        labels = [k for k in batching if k != "clients"]
        ax.bar(labels, [batching[k]["rps"] for k in labels], color=["#9e9e9e", "#d62728"])
        ax.set_title(f"minilm, {batching['clients']} concurrent clients: requests/s")
    else:
        ax.set_axis_off()
    auto = results.get("autoscaling")
    ax = axes[1][1]
    if auto:
        times = [t for t, _ in auto["samples"]]
        ax.step(times, [n for _, n in auto["samples"]], where="post", color="#d62728")
        ax.axvspan(auto["load"]["start_s"], auto["load"]["end_s"], color="#ffcc80", alpha=0.4)
        ax.set_ylim(0, auto["policy"]["max_replicas"] + 0.5)
        ax.set_xlabel("seconds (shaded: load step)")
        ax.set_title("autoscaling: running replicas")
    else:
        ax.set_axis_off()
    cpus = results["machine"]["cpus"]
    fig.suptitle(
        f"maas_ray serving benchmark ({cpus} CPUs, wrk {results['load']['connections']} "
        f"connections, {results['duration_s']:g}s per run)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
