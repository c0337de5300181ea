"""The three tables of the monitoring store, and their sealed Parquet form.

``predictions``: the sampled predictions, one row per request (inputs masked).
``ops``: every answer counted, per replica, version and arm and flush interval,
with a bounded sample of latencies. ``labels``: the ground truth sent as
feedback. A file is one table, Parquet (zstd), then sealed (``crypto.py``).
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from maas_ray.monitoring.crypto import seal, unseal

PREDICTIONS = pa.schema(
    [
        ("request_id", pa.string()),
        ("time", pa.float64()),
        ("version", pa.string()),
        ("arm", pa.string()),
        ("status", pa.int32()),
        ("latency_ms", pa.float32()),
        ("content_type", pa.string()),
        ("inputs", pa.string()),
        ("outputs", pa.string()),
    ]
)
OPS = pa.schema(
    [
        ("time", pa.float64()),
        ("version", pa.string()),
        ("arm", pa.string()),
        ("requests", pa.int64()),
        ("errors", pa.int64()),
        ("latency_ms", pa.list_(pa.float32())),
        ("batches", pa.int64()),
        ("batched", pa.int64()),
    ]
)
LABELS = pa.schema([("request_id", pa.string()), ("time", pa.float64()), ("label", pa.string())])
SCHEMAS = {"predictions": PREDICTIONS, "ops": OPS, "labels": LABELS}


def table(kind: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts) as a table of ``kind``."""
    return pa.Table.from_pylist(rows, schema=SCHEMAS[kind])


def to_sealed(key: bytes, data: pa.Table) -> bytes:
    """A table as a sealed Parquet file."""
    out = io.BytesIO()
    pq.write_table(data, out, compression="zstd")
    return seal(key, out.getvalue())


def from_sealed(key: bytes, sealed: bytes) -> pa.Table:
    """The table of a sealed Parquet file (SealError: another key or damage)."""
    return pq.read_table(io.BytesIO(unseal(key, sealed)))


def empty(kind: str) -> pa.Table:
    """A table of ``kind`` with no rows."""
    return SCHEMAS[kind].empty_table()


def conform(kind: str, data: pa.Table) -> pa.Table:
    """A table read back in the current schema of ``kind``: columns a file written by an
    older version lacks are nulls, columns it has that are gone are dropped."""
    schema = SCHEMAS[kind]
    columns = [
        data.column(f.name).cast(f.type)
        if f.name in data.column_names
        else pa.nulls(data.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
