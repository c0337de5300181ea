"""The Open Inference Protocol v2's gRPC messages and service (``predict_v2.proto``).

``predict_v2_pb2*.py`` are generated from the ``.proto`` by ``make protos``; edit the
``.proto`` and run that, never the generated files.
"""
