"""The background sample an explainer compares against, stored in the model's folder.

``Registry.register(..., background=rows)`` writes it as ``maas_background.json``
inside the version's artifact folder, so the version's digest covers it and a
replica reads it from the same verified download as the model. Rows are what the
model takes: a pandas DataFrame (its column names kept), an array or a list of
rows, or a list of texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

FILE = "maas_background.json"
MAX_ROWS = 1000  # SHAP's cost grows with it; a few hundred rows are plenty


def dump_background(rows: Any) -> bytes:
    """``rows`` as the stored JSON: ``{"columns": [...] or null, "data": [...]}``."""
    columns: list[str] | None = None
    if type(rows).__name__ == "DataFrame" and hasattr(rows, "to_dict"):
        split = rows.to_dict(orient="split", index=False)
        columns, data = [str(c) for c in split["columns"]], split["data"]
    else:
        data = rows.tolist() if hasattr(rows, "tolist") else list(rows)
    if not data:
        raise ValueError("got no rows for background: give at least one")
    if len(data) > MAX_ROWS:
        raise ValueError(f"got {len(data)} rows for background: at most {MAX_ROWS}")
    return orjson.dumps(
        {"columns": columns, "data": data},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def load_background(folder: str | Path) -> Any:
    """The stored rows of a downloaded version (None: it has none): a DataFrame when
    they were stored with column names, else a NumPy array."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    stored = orjson.loads(path.read_bytes())
    import numpy as np

    if stored.get("columns") is not None:
        import pandas as pd

        return pd.DataFrame(stored["data"], columns=stored["columns"])
    return np.asarray(stored["data"])
