"""Values in JSON: converting numpy values to JSON, and telling what JSON holds as is."""

from __future__ import annotations

import json

import numpy as np


def to_json(value):
    """``value`` with numpy scalars and arrays, tuples and dict keys made JSON-able.

    Anything else that JSON cannot hold becomes its ``repr``: fine for
    fingerprints, which are only compared.
    """
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def is_json(value) -> bool:
    """Whether ``json.dumps`` writes ``value`` as it is (NaN and infinity allowed)."""
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True
