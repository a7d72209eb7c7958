#!/usr/bin/env bash
# The main job: set up .venv (first run only) and run the demo on the built-in images.
# Extra arguments go to `blindsr-gym demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/blindsr-gym demo "$@"
