#!/usr/bin/env bash
# Ship a renderer run: copy its weights and card into the package, keep its resume state, and
# measure the model card's evaluation tables with the project's own `blindsr-gym evaluate`.
#   bash scripts/ship_renderer.sh RUN_DIR NAME [FILE_STEM]     e.g. runs/amnet_x4 amnet_x4 amnet
#   KEEP_RESUME=0 bash scripts/ship_renderer.sh runs/dan_x4 dan_x4 dan     (DAN: bicubic and dan, Gaussian8)
# Needs ../shared/data/test (or $BLINDSR_DATA/test). Extra metrics with METRICS=psnr,ssim,niqe.
# KEEP_RESUME=0 skips copying the resume state into checkpoints/ (a GAN run's, with the discriminator
# and its Adam moments, is too large to commit). BUDGET="..." writes that text into the card as
# training.budget (DAN's card states the compute budget it was matched to). Every evaluation writes its
# per-image log next to the run (RUN_DIR/eval_*.jsonl) and resumes it: if the script stops (a session
# ends), running it again continues the evaluation where it stopped (delete a log to start over with
# other weights; a mismatch is refused).
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1; name=$2; stem=${3:-amnet}
data=${BLINDSR_DATA:-../shared/data}/test
metrics=${METRICS:-psnr,ssim}
w=renderers/weights
mkdir -p "$w"
# a shipped name keeps its weights: other weights go under a new name (OVERWRITE=1 to replace on purpose)
if [ -f "$w/$name.safetensors" ] && ! cmp -s "$run/$stem.safetensors" "$w/$name.safetensors" && [ "${OVERWRITE:-0}" != 1 ]; then
    echo "$w/$name.safetensors exists with other weights: ship under a new name (or OVERWRITE=1)" >&2; exit 2
fi
cp "$run/$stem.safetensors" "$w/$name.safetensors"
cp "$run/$stem.json" "$w/$name.json"
if [ -n "${BUDGET:-}" ]; then
    BUDGET="$BUDGET" CARD="$w/$name.json" .venv/bin/python -c '
import json, os, pathlib
p = pathlib.Path(os.environ["CARD"]); card = json.loads(p.read_text())
card["training"]["budget"] = os.environ["BUDGET"]; p.write_text(json.dumps(card, indent=2) + "\n")'
fi
if [ "${KEEP_RESUME:-1}" = 1 ]; then
    mkdir -p "checkpoints/$name"
    cp "$run/last.pt" "checkpoints/$name/last.pt"
fi
sets=("$data/Set5" "$data/Set14" "$data/BSD100")
if [ "$stem" = dan ]; then
    # DAN is blind (it estimates its own code): its card gets the Table 2 figures, Gaussian8 only.
    .venv/bin/blindsr-gym evaluate --data "${sets[@]}" --kernels gaussian8 --methods bicubic,dan \
        --dan "$w/$name.safetensors" --metrics "$metrics" --card-key gaussian8 --no-progress \
        --json "$run/eval_gaussian8.json" --markdown "$run/eval_gaussian8.md" --log "$run/eval_gaussian8.jsonl" --resume
    exit 0
fi
.venv/bin/blindsr-gym evaluate --data "${sets[@]}" --kernels gaussian8 --methods bicubic,gt \
    --renderer "$w/$name.safetensors" --metrics "$metrics" --card-key gaussian8 --no-progress \
    --json "$run/eval_gaussian8.json" --markdown "$run/eval_gaussian8.md" --log "$run/eval_gaussian8.jsonl" --resume
.venv/bin/blindsr-gym evaluate --data "${sets[@]}" --kernels sigma:0.2,1.3,2.6 --methods bicubic,gt \
    --renderer "$w/$name.safetensors" --metrics "$metrics" --card-key table1 --by-kernel --no-progress \
    --json "$run/eval_table1.json" --markdown "$run/eval_table1.md" --log "$run/eval_table1.jsonl" --resume
