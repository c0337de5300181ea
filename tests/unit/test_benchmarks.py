"""The benchmark's answer check: strict for labels, float32 noise allowed for embeddings."""

from __future__ import annotations

from benchmarks.serving import _same


def test_embeddings_equal_within_float32_noise() -> None:
    assert _same([[0.0123, -0.2]], [[0.0123 + 9e-8, -0.2]])  # what mlflow and we encode
    assert not _same([[0.1, 0.2]], [[0.1, 0.21]])
    assert not _same([[0.1, 0.2]], [[0.1, 0.2, 0.3]])


def test_labels_must_be_equal() -> None:
    assert _same(["positive", "negative"], ["positive", "negative"])
    assert not _same(["positive"], ["negative"])
    assert _same([1, 2], [1, 2])
    assert not _same([1, 2], [1, 3])


def test_the_protocol_benchmark_sends_the_same_rows_each_way() -> None:
    """v1, v2 JSON, v2 binary and gRPC bodies of benchmarks/protocols.py decode to one
    array (the gRPC one as h2load sends it: a framed message)."""
    import numpy as np
    import orjson

    from benchmarks.load import grpc_frame
    from benchmarks.protocols import bodies, grpc_request
    from maas_ray.serving import oip, oip_grpc
    from maas_ray.serving.proto import predict_v2_pb2 as pb

    rows = np.arange(60, dtype=np.float32).reshape(2, 30) / 7
    sent = bodies(rows)
    v1 = np.asarray(orjson.loads(sent["v1"][0])["inputs"], dtype=np.float32)
    as_json = oip.decode(sent["v2 JSON"][0], None).tensors[0].values
    body, headers = sent["v2 binary"]
    as_bytes = oip.decode(body, headers["Inference-Header-Content-Length"]).tensors[0].values
    assert np.array_equal(v1, rows)
    assert np.array_equal(as_json, rows)
    assert np.array_equal(as_bytes, rows)
    framed = grpc_frame(grpc_request(rows).SerializeToString())
    assert framed[0] == 0
    assert int.from_bytes(framed[1:5], "big") == len(framed) - 5
    message = pb.ModelInferRequest.FromString(framed[5:])
    assert np.array_equal(oip_grpc.decode(message).tensors[0].values, rows)
