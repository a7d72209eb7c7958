#!/usr/bin/env bash
# Every GPU benchmark of the GPU-native data path, and its batched-vs-reference checks on CUDA, in one run
# of under 8 minutes on an H100. Run it on the lent GPU (the device tool) from the repository root, after
# `bash scripts/device_tree.sh on` here (the tree without the large weights, wheels in .device/whl):
#
#   device run: bash benchmarks/gpu_suite.sh        (carry: [".device/whl"]: the wheels only; all of .device,
#                                                    with the training images, is over the tool's 64 MiB)
#
# One JSON file per benchmark, each with the command that made it, bundled into $OUT/results.tar (rebuilt
# after every step, so a run stopped at its limit still returns what it finished) beside $OUT/suite.log: the
# device tool returns at most 8 files. Here: `tar -xf <files_at>/results.tar -C docs/gpu/<device>/` and commit
# them with the machine's card (device.json). Locally,
# `OUT=/tmp/suite DEVICE=cpu SMALL=1 bash benchmarks/gpu_suite.sh` runs the same steps small, on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu_suite}
DEVICE=${DEVICE:-cuda}
RES=$(mktemp -d)  # the JSON files, tarred into $OUT/results.tar after each step
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}  # the device's python3 holds torch; a local dry-run passes PYTHON=.venv/bin/python
SITE=${SITE:-/tmp/site}
if [ -d .device/whl ]; then  # the device has torch but not gymnasium: install the carried wheels and the package
  rm -rf "$SITE"
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .device/whl/*.whl \
    && $PYTHON -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE" . \
    || { echo "install failed"; exit 1; }
  export PYTHONPATH=$SITE
fi
PY="$PYTHON -P"  # -P: the repository's blindsr_gym/ must not shadow the installed package
N=${N:-512}; NS=${NS:-64}; STEPS=4; PEAK=989; TRAIN_STEPS=30; DDPG_ENVS=96; DDPG_ITERS=20  # N, NS: env sizes
REPEATS=10; TB=64; PB=32; PSTEPS=50  # TB: the renderer training's batch (the paper's); PB: actor pre-training's
BUF=20000  # a full DDPG replay buffer (its default size)
if [ "${SMALL:-0}" = 1 ]; then N=8; NS=4; STEPS=1; TRAIN_STEPS=2; DDPG_ENVS=4; DDPG_ITERS=2; REPEATS=2; TB=8; PB=4
  PSTEPS=2; BUF=64; fi
failed=0
# ONLY="env_niqe_bf16 cost_table" reruns just those steps (a rerun on the same warm machine)
run() {  # run NAME TIMEOUT ARGS...: stdout -> NAME.json in results.tar, stderr -> $OUT/suite.log
  local name=$1 limit=$2; shift 2
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  local t0=$SECONDS
  echo "== $name: $*" >> "$OUT/suite.log"
  if timeout "$limit" $PY "$@" > "$RES/$name.json" 2> >(tee -a "$OUT/suite.log" | tail -n 2 > /tmp/gpu_suite_last.err); then
    echo "ok      $name ($((SECONDS - t0)) s)"
  else
    sleep 1; echo "FAILED  $name ($((SECONDS - t0)) s): $(tr '\n' ' ' < /tmp/gpu_suite_last.err)"; failed=1
  fi
  # atomic: the device tool may stop the run mid-write, and a torn tar would lose every step before it
  tar -cf "$OUT/results.tar.tmp" -C "$RES" . && mv "$OUT/results.tar.tmp" "$OUT/results.tar"
}
run device 60 -c "import json, platform, torch; d = torch.cuda.is_available(); print(json.dumps({
  'gpu': torch.cuda.get_device_name() if d else None, 'torch': torch.__version__, 'cuda': torch.version.cuda,
  'python': platform.python_version(), 'cpu_count': __import__('os').cpu_count(),
  'gpu_memory_gib': round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if d else None}, indent=1))"
run equality 120 benchmarks/gpu_equality.py --device "$DEVICE"
run env_psnr_bf16 150 benchmarks/env_throughput.py --device "$DEVICE" --metric psnr --precision bf16 \
  --num-envs $N --sync-envs $NS --steps $STEPS --repeats 2 --single-episodes 32 --threads 8
run env_niqe_bf16 150 benchmarks/env_throughput.py --device "$DEVICE" --metric niqe --precision bf16 \
  --num-envs $N --sync-envs $NS --steps $STEPS --repeats 2 --single-episodes 16 --threads 8
run cost_table 120 -c "import json, sys, torch; from blindsr_gym.evaluate import cost_table
print(json.dumps({'command': 'cost_table(repeats=20) on cpu and cuda', 'threads': torch.get_num_threads(),
                  'rows': [r for d in ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
                           for r in cost_table(repeats=20, device=d)]}, indent=1))"
run train_amnet_bf16 120 benchmarks/train_speed.py --device "$DEVICE" --batch $TB --patch 64 --amp bf16 \
  --steps $TRAIN_STEPS --peak-tflops $PEAK
run pretrain_bf16 150 benchmarks/pretrain_speed.py --device "$DEVICE" --batch $PB --patch 64 --amp bf16 \
  --steps $PSTEPS --peak-tflops $PEAK --threads 8
run ddpg_niqe_bf16 150 benchmarks/ddpg_speed.py --device "$DEVICE" --env BlindSR-NIQE-v0 --precision bf16 \
  --num-envs $DDPG_ENVS --batch $DDPG_ENVS --iterations $DDPG_ITERS --peak-tflops $PEAK --threads 8
[ "$DEVICE" = cuda ] && run ddpg_niqe_bf16_graphs 150 benchmarks/ddpg_speed.py --device "$DEVICE" \
  --env BlindSR-NIQE-v0 --precision bf16 --cuda-graphs --num-envs $DDPG_ENVS --batch $DDPG_ENVS \
  --iterations $DDPG_ITERS --peak-tflops $PEAK --threads 8
# several DDPG runs side by side (issue 22's seeds): their summed rate over one run's, and each run's own rate
run ddpg_parallel 240 benchmarks/ddpg_parallel.py --device "$DEVICE" --env BlindSR-NIQE-v0 --precision bf16 \
  --processes 1 3 --num-envs $DDPG_ENVS --batch $DDPG_ENVS --iterations $DDPG_ITERS --threads 4
# where the time goes, and the host's share of a step, side by side with the ways they replaced
run host_overhead 90 benchmarks/host_overhead.py --device "$DEVICE" --threads 8 --repeats $REPEATS --batch $N
run blur_speed 60 benchmarks/blur_speed.py --device "$DEVICE" --num $N --repeats $REPEATS
# a DDPG resume on the device: its replay buffer's images drawn again from their sources (and the state's size)
run ddpg_state 90 benchmarks/ddpg_state.py --device "$DEVICE" --num $BUF --threads 8
run profile_gpu 120 benchmarks/profile_gpu.py --device "$DEVICE" --num-envs $N --steps $STEPS --top 40 --threads 8
# last, as their compile times are unknown there: AMNet's blocks through torch.compile, each beside the eager run
# (a step cut off at its limit costs only itself; COMPILE=0 skips them)
if [ "${COMPILE:-1}" = 1 ]; then
  run train_amnet_bf16_compile 180 benchmarks/train_speed.py --device "$DEVICE" --batch $TB --patch 64 --amp bf16 \
    --steps $TRAIN_STEPS --peak-tflops $PEAK --compile
  run env_psnr_bf16_compile 180 benchmarks/env_throughput.py --device "$DEVICE" --metric psnr --precision bf16 \
    --num-envs $N --steps $STEPS --repeats 2 --single-episodes 4 --threads 8 --skip-sync --compile
fi
echo "in $OUT/results.tar: $(tar -tf "$OUT/results.tar" | grep -c json) JSON files"
exit $failed
