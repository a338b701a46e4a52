#!/usr/bin/env bash
# The benchmark of benchmarks/README.md, from the repository root (about 15 minutes on 2 quiet cores).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/transferlab bench --data ../shared/data/15scene --images 64 --repeats 3 --accuracy-per-class 10 \
    --cache /tmp/bench-cache "$@"
