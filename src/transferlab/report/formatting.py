"""How numbers look on the page (Jinja filters): accuracies with 4 decimals, counts with separators, tiny values in
e-notation."""
from __future__ import annotations

import json
import math


def fmt(v, col: str = "") -> str:
    """A table cell: accuracies with 4 decimals, counts with thousands separators, tiny numbers in e-notation."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        c = col.lower()
        if "acc" in c or c in ("share", "cosine"):
            return f"{v:.4f}"
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.2e}"
        if v.is_integer() and abs(v) >= 1:
            return f"{int(v):,}"
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return str(v)


def acc(v) -> str:
    """An accuracy: 4 decimals, or n/a."""
    return "n/a" if v is None else f"{float(v):.4f}"


def spec(v, format_spec: str) -> str:
    """``format(v, format_spec)``, e.g. ``{{ n|spec(",") }}`` or ``{{ share|spec(".1%") }}``."""
    return format(v, format_spec)


def to_json(v) -> str:
    """A record shown whole, indented."""
    return json.dumps(v, indent=1, default=str)


FILTERS = {"fmt": fmt, "acc": acc, "spec": spec, "to_json": to_json}
