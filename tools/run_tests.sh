#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite:  bash tools/run_tests.sh [pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Threads: 2 cores; keep BLAS from oversubscribing when tests start subprocesses.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
set +e
"$ROOT/.venv/bin/python" -m pytest tests -q -rs --durations=15 "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit "$rc"
