"""Slow clients (slowloris): 200 connections that send their headers a line a second
and never finish do not keep normal clients from being served, nor slow them down
much: the ingress (HAProxy) waits on a slow client without holding anything a normal
request needs."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from maas_ray import Settings
from tests.conftest import FIGURES, auth

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 200


class Slowloris:
    """``n`` connections, each sending a request line and then one header line a second."""

    def __init__(self, settings: Settings, n: int) -> None:
        self.address = (settings.host, settings.serve_port)
        self.n = n
        self.socks: list[socket.socket] = []
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle)

    def __enter__(self) -> Slowloris:
        for _ in range(self.n):
            sock = socket.create_connection(self.address, timeout=5)
            sock.sendall(b"POST /v1/models/tabular/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.socks.append(sock)
        self._thread.start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(1.0):
            for sock in self.socks:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    self.dropped += 1

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in self.socks:
            sock.close()


def _haproxy_config(settings: Settings) -> str:
    """The config file of the HAProxy that listens on this platform's Serve port."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "haproxy" in (proc.info["name"] or "") and "-f" in cmd:
            text = Path(cmd[cmd.index("-f") + 1]).read_text()
            if f":{settings.serve_port}" in text:
                return text
    raise AssertionError("no HAProxy serves this platform")


def _latencies(settings: Settings, body: Any, n: int) -> list[float]:
    took = []
    with httpx.Client(base_url=settings.serve_url, headers=auth(settings), timeout=30) as http:
        for _ in range(n):
            started = time.perf_counter()
            resp = http.post("/v1/models/tabular/predict", json=body)
            took.append(time.perf_counter() - started)
            assert resp.status_code == 200, resp.text
    return took


def test_two_hundred_slow_header_clients_do_not_stop_normal_ones(
    live: Settings, seeded: dict[str, Any]
) -> None:
    body = {"inputs": seeded["tabular"]["inputs"]}
    before = _latencies(live, body, 100)
    with Slowloris(live, SLOW_CLIENTS) as slow:
        time.sleep(2)  # every slow client has sent a few lines
        during = _latencies(live, body, 100)
        held = sum(1 for s in slow.socks if s.fileno() >= 0) - slow.dropped
    # HAProxy closes a client that sends nothing for MAAS_INGRESS_CLIENT_TIMEOUT_S (60 s).
    assert "timeout client 60s" in _haproxy_config(live)
    p95_before, p95_during = np.percentile(before, 95), np.percentile(during, 95)
    assert p95_during < max(3 * p95_before, 0.25), (p95_during, p95_before)
    FIGURES.append(
        f"{SLOW_CLIENTS} slow-header clients held open ({held} still connected): 100 normal "
        f"predicts all 200, p95 {p95_before * 1000:.0f} ms before and "
        f"{p95_during * 1000:.0f} ms during"
    )
