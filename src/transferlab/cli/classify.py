"""``transferlab classify MODEL_DIR IMAGE|FOLDER…``: the classes of new images, by a model saved with `transferlab
run --save` or a `transferlab finetune` folder."""
from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tabulate import tabulate

from transferlab.deploy.saved import load_classifier
from transferlab.files import atomic_write


def image_files(args: list[str]) -> list[Path]:
    """The files named, and the image files (by Pillow's extensions, hidden ones left out) under the folders
    named, each folder's sorted."""
    extensions = set(Image.registered_extensions())
    out = []
    for a in map(Path, args):
        if a.is_dir():
            found = sorted(p for p in a.rglob("*") if p.is_file() and p.suffix.lower() in extensions
                           and not any(part.startswith(".") for part in p.relative_to(a).parts))
            if not found:
                raise ValueError(f"{a}: no image files in this folder or below it")
            out += found
        else:
            out.append(a)  # a file that does not exist is named among the bad ones
    return out


def top_k(scores: np.ndarray, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(classes[j], float(row[j])) for j in idx] for row, idx in zip(scores, order)]


def csv_text(rows, k: int, kind: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "label", *[f"{c}_{i}" for i in range(1, k + 1) for c in ("class", kind)]])
    for path, top in rows:
        writer.writerow([path, top[0][0], *[v for name, score in top for v in (name, f"{score:.6g}")]])
    return buf.getvalue()


def run(args) -> int:
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, not {args.top}")
    clf = load_classifier(args.model, trust_pickle=args.trust_pickle, cache=args.cache, batch_size=args.batch_size,
                          workers=args.workers, device=args.device, progress=False if args.quiet else None)
    paths = image_files(args.images)
    t0 = time.perf_counter()
    ext = clf.extract(paths)
    if ext.bad and args.strict:
        path, reason = ext.bad[0]
        raise ValueError(f"{path}: {reason} (--strict; {len(ext.bad)} bad files in all)")
    scores = clf.scores(clf.features(ext)) if ext.ok else np.empty((0, len(clf.classes_)))
    seconds = time.perf_counter() - t0
    k = min(args.top, len(clf.classes_))
    rows = list(zip([str(paths[i]) for i in ext.ok], top_k(scores, clf.classes_, k)))
    kind = clf.scores_name
    if args.out:
        atomic_write(args.out, csv_text(rows, k, kind))
    say = sys.stderr if args.json else sys.stdout
    for path, reason in ext.bad:
        print(f"skipped {path}: {reason}", file=say)
    if args.json:
        print(json.dumps({"model": str(clf.path), "label": clf.model.label(), "classifier": clf.classifier,
                          "scores": kind, "classes": clf.classes_,
                          "predictions": [{"path": p, "label": top[0][0],
                                           "top": [{"class": c, "score": s} for c, s in top]} for p, top in rows],
                          "bad_files": [{"path": p, "reason": r} for p, r in ext.bad],
                          "computed_images": ext.computed, "cached_images": ext.cached,
                          "seconds": round(seconds, 3)}, indent=1))
        return 0
    what = ("probabilities" if kind == "probability" else
            f"decision values of the {clf.classifier} (not probabilities: compare them within a row)")
    print(f"{clf.model.label()} · {clf.classifier} · {len(clf.classes_)} classes · scores: {what}")
    if rows:
        ordinal = ["label", *[f"#{i}" for i in range(2, k + 1)]]
        headers = ["image", *[h for o in ordinal for h in (o, kind)]]
        print(tabulate([[p, *[v for c, s in top for v in (c, f"{s:.4f}")]] for p, top in rows], headers=headers))
    print(f"{len(rows)} images classified, {len(ext.bad)} bad files skipped; {ext.computed} computed, "
          f"{ext.cached} from cache, {seconds:.2f} s" + (f"; saved {args.out}" if args.out else ""))
    return 0
