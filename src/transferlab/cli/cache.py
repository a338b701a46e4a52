"""``transferlab cache info|clear``: everything transferlab keeps in its cache folder, with sizes, and freeing it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from tabulate import tabulate

from transferlab.features.cache import FeatureCache, default_cache_root
from transferlab.files import cache_dir
from transferlab.options import CACHE_KINDS


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []


def folders(features: str | Path | None = None) -> dict[str, Path]:
    """The folder of each kind: under :func:`cache_dir`, the features in ``features`` when given."""
    out = {kind: cache_dir() / sub for kind, (sub, _) in CACHE_KINDS.items()}
    out["features"] = Path(features) if features else default_cache_root()
    return out


def survey(features: str | Path | None = None) -> dict[str, dict]:
    """Per kind: folder, description, file count and bytes on disk."""
    out = {}
    for kind, folder in folders(features).items():
        files = _files(folder)
        out[kind] = {"path": str(folder), "what": CACHE_KINDS[kind][1], "files": len(files),
                     "bytes": sum(p.stat().st_size for p in files)}
    return out


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def clear(kinds: list[str], features: str | Path | None = None) -> list[dict]:
    """Delete the given kinds; per kind what was removed and the bytes freed. Features are emptied in place
    (SQLite DELETE + VACUUM: safe while another run holds the cache); other kinds' folders are removed."""
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
    unknown = [k for k in args.kinds if k not in (*CACHE_KINDS, "all")]
    if unknown:
        raise ValueError(f"unknown cache kind {unknown[0]!r}; choose from {', '.join(CACHE_KINDS)} or all")
    if args.action == "clear":
        kinds = list(CACHE_KINDS) if "all" in args.kinds else list(dict.fromkeys(args.kinds or ["features"]))
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
