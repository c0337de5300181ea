"""``skops.io`` imported without PyTorch: import this module instead of ``skops.io``.

Importing ``skops.io`` builds its list of trusted scikit-learn types with
``sklearn.utils.all_estimators()``, whose package walk imports every scikit-learn
package, ``sklearn.externals.array_api_compat.torch`` among them, and that imports
all of PyTorch: 1.6 s of CPU in every process that loads or registers a
scikit-learn model (each replica's start), for a package where no estimator lives.
The walk does not enter a package that is already in ``sys.modules`` without a
``__path__``: a stand-in there for the import's duration keeps PyTorch out; the
trusted list comes out the same (tests/unit/test_skops_io.py compares them).
Where PyTorch is already loaded the walk costs little, and nothing is stood in.
"""

from __future__ import annotations

import sys
import types

ARRAY_API_TORCH = "sklearn.externals.array_api_compat.torch"


def _import_without_torch() -> types.ModuleType:
    if "skops.io" in sys.modules or "torch" in sys.modules or ARRAY_API_TORCH in sys.modules:
        import skops.io

        return skops.io
    stand_in = types.ModuleType(ARRAY_API_TORCH)  # no __path__: the walk stops here
    sys.modules[ARRAY_API_TORCH] = stand_in
    try:
        import skops.io
    finally:
        if sys.modules.get(ARRAY_API_TORCH) is stand_in:
            del sys.modules[ARRAY_API_TORCH]
    return skops.io


sio = _import_without_torch()
