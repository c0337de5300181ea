"""What travels on the wire, named once: formats, headers, aliases, content types.

Light on purpose (no third-party import): the CLI, the SDK, the replicas and
the gateway all read these.
"""

from __future__ import annotations

# MLflow's scoring formats (as `mlflow models serve` takes them): a predict body is a
# JSON object with exactly one of these keys.
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON = "application/json"
CSV = "text/csv"
# A body of one of these is one input: the image's bytes (see serving/decode.py).
IMAGES = ("image/png", "image/jpeg")

VERSION_HEADER = "x-maas-model-version"  # the version that answered
SERVED_BY_HEADER = "x-maas-served-by"  # "shared-pool" when the warm pool answered
REQUEST_ID_HEADER = "x-request-id"  # every answer's id (Serve's ingress sets it); feedback names it
ACTOR_HEADER = "x-maas-actor"  # who typed the command (self-reported; the key is verified)

PRODUCTION = "production"  # the alias a deploy follows unless told otherwise
