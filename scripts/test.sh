#!/usr/bin/env bash
# The test suite: set up .venv with the dev extra (first run only) and run pytest.
# BLINDSR_PYIQA=1 also installs the pyiqa extra, which enables the cross-checks against pyiqa.
# Extra arguments go to pytest (e.g. -m "not slow", -k niqe).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="dev"
[ "${BLINDSR_PYIQA:-0}" = "1" ] && extras="dev,pyiqa"
bash scripts/setup.sh "$extras"
exec .venv/bin/python -m pytest "$@"
