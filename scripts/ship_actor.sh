#!/usr/bin/env bash
# Ship an actor: copy its weights and card into the package and measure the card's evaluation
# (the actor with its renderer under Gaussian8, with the kernel PSNR of its codes) with the
# project's own `blindsr-gym evaluate`.
#   bash scripts/ship_actor.sh CHECKPOINT NAME METHOD
#   e.g. bash scripts/ship_actor.sh runs/ddpg_niqe/actor_best.safetensors actor_niqe_x4 amgan-rl
#        bash scripts/ship_actor.sh runs/actor_pre/actor.safetensors actor_psnr_x4 amnet-rl
# The renderer is the one the actor was trained against (its card's training.env_kwargs.renderer, as
# `blindsr-gym train --renderer` writes it), else the method's default (amnet_x4 / amgan_x4); RENDERER=...
# overrides both. METRICS (default psnr,ssim,niqe) chooses the metrics. A shipped NAME is not overwritten with other weights. Needs ../shared/data/test (or $BLINDSR_DATA/test).
# The evaluation's per-image log runs/NAME.eval.jsonl is resumed: run the script again to continue an
# evaluation that stopped (delete the log to start over with other weights; a mismatch is refused).
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=$1; name=$2; method=$3
data=${BLINDSR_DATA:-../shared/data}/test
w=agents/weights
case "$method" in
    amnet-rl) default=amnet_x4 ;;
    amgan-rl) default=amgan_x4 ;;
    *) echo "METHOD must be amnet-rl or amgan-rl, got $method" >&2; exit 2 ;;
esac
mkdir -p "$w"
# a shipped name keeps its weights: other weights go under a new name (OVERWRITE=1 to replace on purpose)
if [ -f "$w/$name.safetensors" ] && ! cmp -s "$ckpt" "$w/$name.safetensors" && [ "${OVERWRITE:-0}" != 1 ]; then
    echo "$w/$name.safetensors exists with other weights: ship under a new name (or OVERWRITE=1)" >&2; exit 2
fi
cp "$ckpt" "$w/$name.safetensors"
cp "${ckpt%.safetensors}.json" "$w/$name.json"
trained=$(CARD="$w/$name.json" .venv/bin/python -c '
import json, os
t = json.load(open(os.environ["CARD"])).get("training") or {}
print((t.get("env_kwargs") or {}).get("renderer") or "")')
renderer=${RENDERER:-${trained:-$default}}
echo "ship_actor.sh: $name is evaluated with the renderer $renderer" >&2
case "$method" in
    amnet-rl) flags=(--renderer "$renderer" --actor "$w/$name.safetensors") ;;
    amgan-rl) flags=(--gan-renderer "$renderer" --gan-actor "$w/$name.safetensors") ;;
esac
.venv/bin/blindsr-gym evaluate --data "$data/Set5" "$data/Set14" "$data/BSD100" --kernels gaussian8 \
    --methods "$method" "${flags[@]}" --metrics "${METRICS:-psnr,ssim,niqe}" \
    --card-key gaussian8 --no-progress --json "runs/$name.eval.json" --markdown "runs/$name.eval.md" \
    --log "runs/$name.eval.jsonl" --resume
