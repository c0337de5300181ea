"""``GET /metrics``: the Prometheus text of Ray's own exporter, on every node, filtered.

Every Ray node serves its metrics at its ``MetricsExportPort`` (``maas up`` sets the
head's to ``MAAS_RAY_METRICS_PORT``). The platform's metrics are made with
``ray.serve.metrics`` in the replicas (``maas_requests`` by model, version and
status; ``maas_batch_size``), and in the management application (``maas_quality``,
``maas_drift_psi``, ``maas_alert``, set by its monitoring loop); Serve's own
families (``ray_serve_*``) carry the latency histograms, in-flight requests and
replica health per application (a model's application is its name; its canary's
or shadow's is ``NAME~challenger``). This module only gathers and filters them.
"""

from __future__ import annotations

import logging

import httpx

logger = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FAMILIES = ("ray_maas_", "ray_serve_")
TIMEOUT_S = 5.0


def _targets() -> list[str]:
    import ray

    return [
        f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        for node in ray.nodes()
        if node.get("Alive") and node.get("MetricsExportPort")
    ]


def keep(text: str) -> list[str]:
    """The lines (samples, and their HELP and TYPE) of the families we export."""
    out = []
    for line in text.splitlines():
        name = line.split(" ", 3)[2] if line.startswith("# ") and line.count(" ") >= 2 else line
        if name.startswith(FAMILIES):
            out.append(line)
    return out


def scrape() -> str:
    """Every node's exporter, filtered to the platform's and Serve's families."""
    lines: list[str] = []
    seen: set[str] = set()  # a HELP/TYPE line once, though every node sends it
    for target in _targets():
        try:
            text = httpx.get(target, timeout=TIMEOUT_S).text
        except httpx.HTTPError:
            logger.warning("no metrics from %s", target, exc_info=True)
            lines.append(f"# maas: no answer from {target}")
            continue
        for line in keep(text):
            if line.startswith("#"):
                if line in seen:
                    continue
                seen.add(line)
            lines.append(line)
    return "\n".join(lines) + "\n"
