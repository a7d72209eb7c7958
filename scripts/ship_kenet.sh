#!/usr/bin/env bash
# Ship a KENet run: copy its weights and card into the package and measure the card's evaluation
# (KENet + AMNet under Gaussian8, with the kernel PSNR) with the project's own `blindsr-gym evaluate`.
#   bash scripts/ship_kenet.sh RUN_DIR [NAME]          e.g. runs/kenet_x4 kenet_x4
# Needs ../shared/data/test (or $BLINDSR_DATA/test) and the shipped amnet_x4 renderer. The evaluation's
# per-image log RUN_DIR/eval_gaussian8.jsonl is resumed: run the script again to continue one that stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1; name=${2:-kenet_x4}
data=${BLINDSR_DATA:-../shared/data}/test
w=agents/weights
mkdir -p "$w"
cp "$run/kenet.safetensors" "$w/$name.safetensors"
cp "$run/kenet.json" "$w/$name.json"
.venv/bin/blindsr-gym evaluate --data "$data/Set5" "$data/Set14" "$data/BSD100" --kernels gaussian8 \
    --methods kenet --kenet "$w/$name.safetensors" --renderer amnet_x4 --metrics "${METRICS:-psnr,ssim}" \
    --card-key gaussian8 --no-progress --json "$run/eval_gaussian8.json" --markdown "$run/eval_gaussian8.md" \
    --log "$run/eval_gaussian8.jsonl" --resume
