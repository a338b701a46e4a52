"""``transferlab cache info|clear``: what the feature cache holds, and freeing it."""
from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("cache", help="show or clear the feature cache")
    p.add_argument("action", choices=["info", "clear"], help="info: what it holds; clear: delete the features")
    p.add_argument("--cache", default=None, help="cache folder (default: the user cache)")
    p.add_argument("--json", action="store_true", help="print the information as JSON")


def run(args) -> int:
    from tabulate import tabulate

    from ..features.cache import FeatureCache

    cache = FeatureCache(args.cache)
    if args.action == "clear":
        n = cache.clear()
        print(f"cleared {n} feature rows from {cache.path}")
        return 0
    info = cache.info()
    if args.json:
        print(json.dumps({"path": str(cache.path), "bytes": cache.size_bytes(), "entries": info}, indent=2))
        return 0
    rows = [[e["spec"]["model"], e["spec"]["weights_sha256"][:12], e["spec"]["layer"], e["spec"]["pool"],
             e["spec"]["gray"], e["spec"]["preprocess"].split(":mean")[0], e["spec"]["numerics"], e["dim"],
             e["images"], e["megabytes"]] for e in info]
    print(tabulate(rows, headers=["model", "weights", "layer", "pool", "gray", "preprocess", "numerics", "dim",
                                  "images", "MB"]))
    print(f"{cache.path}: {cache.size_bytes() / 1e6:.1f} MB on disk")
    return 0
