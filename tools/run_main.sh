#!/usr/bin/env bash
# Set up (if needed) and run the main job, the toy-data quickstart:  bash tools/run_main.sh [--out DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ $# -eq 0 ]; then set -- --out outputs/quickstart; fi
exec "$ROOT/.venv/bin/python" tools/quickstart.py "$@"
