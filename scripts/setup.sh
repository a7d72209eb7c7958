#!/usr/bin/env bash
# Create .venv at the project root (if missing) and install blindsr-gym into it, editable.
# Usage: bash scripts/setup.sh [EXTRAS]      e.g. "dev" or "dev,pyiqa"
# Torch is pinned so that no multi-GB CUDA build is pulled where the CPU build suffices:
#   default torch==2.13.0 (CPU build); with the pyiqa extra torch==2.14.1 torchvision==0.29.1
#   (pyiqa needs torchvision). Override with BLINDSR_TORCH="torch==X ..." on other machines.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$py" -m venv .venv
vpy=.venv/bin/python
pip_q() { "$vpy" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "is ignored: it is neither" || true; }

if [[ ",$extras," == *",pyiqa,"* ]]; then
  want="${BLINDSR_TORCH:-torch==2.14.1 torchvision==0.29.1}"
  "$vpy" -c "import torchvision" 2>/dev/null || pip_q $want
else
  want="${BLINDSR_TORCH:-torch==2.13.0}"
  "$vpy" -c "import torch" 2>/dev/null || pip_q $want
fi
"$vpy" -c "import torch" || { echo "setup: torch failed to install ($want)" >&2; exit 1; }

stamp=".venv/.blindsr-setup-$(cat setup.cfg pyproject.toml | sha1sum | cut -c1-12)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  spec="."; [ -n "$extras" ] && spec=".[$extras]"
  pip_q -e "$spec"
  "$vpy" -c "import blindsr_gym" || { echo "setup: installing blindsr-gym failed" >&2; exit 1; }
  touch "$stamp"
fi
