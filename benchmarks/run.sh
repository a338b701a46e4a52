#!/usr/bin/env bash
# The benchmark of benchmarks/README.md, from the repository root (18 minutes on 2 loaded AVX2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/transferlab bench --data ../shared/data/15scene --images 32 --repeats 3 --accuracy-per-class 10 "$@"
