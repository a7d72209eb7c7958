#!/usr/bin/env bash
# Every GPU benchmark of the GPU-native data path, and its batched-vs-reference checks on CUDA, in one run
# of under 8 minutes on an H100. Run it on the lent GPU (the device tool) from the repository root, after
# `bash scripts/device_tree.sh on` here (the tree without the large weights, wheels in .device/whl):
#
#   device run: bash benchmarks/gpu_suite.sh        (carry: [".device"])
#
# JSON files go to $OUT (the device tool brings them back), one per benchmark, with the command that made
# each; copy them to docs/gpu/<device>/ and commit them with the machine's card (device.json). Locally,
# `OUT=/tmp/suite DEVICE=cpu SMALL=1 bash benchmarks/gpu_suite.sh` runs the same steps small, on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu_suite}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=python3
if [ -d .device/whl ]; then  # the device has torch but not gymnasium: install the carried wheels and the package
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/whl/*.whl \
    && python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . \
    || { echo "install failed"; exit 1; }
  export PYTHONPATH=/tmp/site
  PY="python3 -P"  # -P: the repository's blindsr_gym/ must not shadow the installed package
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
fi
N=512; NS=64; STEPS=4; PEAK=989; TRAIN_STEPS=30
if [ "${SMALL:-0}" = 1 ]; then N=8; NS=4; STEPS=1; TRAIN_STEPS=2; fi
failed=0
run() {  # run NAME TIMEOUT ARGS...: stdout -> $OUT/NAME.json, stderr -> $OUT/NAME.err
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  if timeout "$limit" $PY "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"; then
    echo "ok      $name ($((SECONDS - t0)) s)"; rm -f "$OUT/$name.err"
  else
    echo "FAILED  $name ($((SECONDS - t0)) s): $(tail -n 2 "$OUT/$name.err" | tr '\n' ' ')"; failed=1
  fi
}
run device 60 -c "import json, platform, torch; d = torch.cuda.is_available(); print(json.dumps({
  'gpu': torch.cuda.get_device_name() if d else None, 'torch': torch.__version__, 'cuda': torch.version.cuda,
  'python': platform.python_version(), 'cpu_count': __import__('os').cpu_count(),
  'gpu_memory_gib': round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if d else None}, indent=1))"
run equality 240 benchmarks/gpu_equality.py --device "$DEVICE"
run env_psnr_bf16 300 benchmarks/env_throughput.py --device "$DEVICE" --metric psnr --precision bf16 \
  --num-envs $N --sync-envs $NS --steps $STEPS --repeats 2 --single-episodes 32 --threads 8
run env_psnr_fp32 240 benchmarks/env_throughput.py --device "$DEVICE" --metric psnr --precision fp32 \
  --num-envs $N --skip-sync --steps $STEPS --repeats 2 --single-episodes 16 --threads 8
run env_niqe_bf16 300 benchmarks/env_throughput.py --device "$DEVICE" --metric niqe --precision bf16 \
  --num-envs $N --sync-envs $NS --steps $STEPS --repeats 2 --single-episodes 16 --threads 8
run cost 240 -m blindsr_gym.cli evaluate --cost --cost-repeats 20 --json "$OUT/cost_table.json"
run train_amnet_bf16 300 benchmarks/train_speed.py --device "$DEVICE" --batch 64 --patch 64 --amp bf16 \
  --steps $TRAIN_STEPS --peak-tflops $PEAK
echo "files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $failed
