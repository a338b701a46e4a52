#!/usr/bin/env bash
# The benchmark of docs/performance.md, from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/transferlab bench --data ../shared/data/15scene --images 32 --repeats 3 --accuracy-per-class 10 "$@"
