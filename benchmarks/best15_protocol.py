"""The best SVM recipe (the concatenation of the seven offline feature sets, C by 5-fold CV on train)
under the literature's protocol: ``random:10`` with 100 training images per class, mean ± std. The same function
(``studies.fusion.over_splits``) that ``transferlab study fusion --protocol random:10 --train-per-class 100``
uses for its ``protocol`` table, without the study's first-split rows; features come through the cache.

    PYTHONPATH=src python benchmarks/best15_protocol.py [--data ../shared/data/15scene] [--splits 10]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from transferlab.features.views import PLAIN
from transferlab.studies import fusion
from transferlab.config import RunConfig
from transferlab.studies.members import default_backbones, load_members

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "15scene"), help="15 Scene folder")
    p.add_argument("--splits", type=int, default=10, help="random splits (default: %(default)s)")
    a = p.parse_args()
    cfg = RunConfig(data=a.data, protocol=f"random:{a.splits}", train_per_class=100, progress=False)
    t0 = time.perf_counter()
    ms = load_members(cfg, default_backbones(), time_forward=False)
    x = np.concatenate([m.x[PLAIN] for m in ms.members.values()], axis=1)
    result = fusion.over_splits(cfg, ms, "concatenation of " + " + ".join(ms.members), x)
    print(json.dumps(result | {"wall_seconds": round(time.perf_counter() - t0, 1)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
