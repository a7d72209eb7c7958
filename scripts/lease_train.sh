#!/usr/bin/env bash
# One training run split over GPU leases (the device tool: 15 minutes a lease, 64 MiB in, 8 files of <= 16 MiB
# back). The run folder travels in as a tar under .device/runs/ and comes back split through $OUT; every
# trainer stops at its next checkpoint after --time-budget and --resume continues it exactly.
#
#   here:    bash scripts/lease_train.sh prep NAME [DATA [VAL]] # training images (and validation images,
#                                                              # VAL) as lossless WebP in .device/data/train
#                                                              # (and .device/data/val), once; the run's tar
#   device:  bash scripts/lease_train.sh run NAME MINUTES -- train-renderer --data .device/data/train ...
#            (carry [".device"]; the trainer's own flags, without --out, --resume or --time-budget; HARD_S
#            seconds, default MINUTES + 45 s, stop a trainer whose checkpoint comes late: keep MINUTES + 45 s,
#            the install and the packing inside the call's timeout_s)
#   here:    bash scripts/lease_train.sh collect NAME FILES_AT  # the parts back into runs/NAME and
#                                                              # .device/runs/NAME.tar (the next lease resumes
#                                                              # from there; TensorBoard event files stay here)
#   device:  bash scripts/lease_train.sh many SPEC MINUTES     # up to 4 runs side by side (SPEC: `NAME COMMAND
#                                                              # ARGS...` a line); collect each as above
#
# `run` writes to $OUT: NAME.tar.part-aa, -ab, ... (15 MiB each, at most 6) and NAME.log. LEAVE="FILE ..." leaves
# those files of the run folder on the device. (A DDPG state keeps its replay buffer as episode sources, ~5 MiB
# at 20,000 transitions, not as images, 236 MiB: it comes back, and a DDPG run resumes in the next lease like any
# other.) DEVICE_DIR (default .device) and RUNS_DIR (default runs) move what travels and where runs live;
# tests/test_lease.py runs the three steps on the CPU, two leases of a tiny renderer run and of a tiny DDPG run,
# and checks each equals the uninterrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
# the device has torch, not gymnasium: the carried wheels and the package, once per call (`many` installs for
# all its runs, which then skip it: SITE_READY=1)
install_site() {
  SITE=${SITE:-/tmp/site}
  if [ -d "$D/whl" ] && [ "${SITE_READY:-0}" != 1 ]; then
    rm -rf "$SITE"
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$D"/whl/*.whl
    $PYTHON -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE" .
  fi
  if [ -d "$D/whl" ]; then export PYTHONPATH=$SITE; fi
}
# the run folder as it travels to a lease: what the trainer reads on --resume (its state, its config). Not its
# TensorBoard event files (a resumed run writes a new one; they grow with every validation's images) nor its
# exported weights (written again at the next checkpoint, or when a validation beats the best): both stay in
# $RUNS/NAME, and `collect` extracts what comes back over them
pack_run() {
  mkdir -p "$D/runs"
  tar -cf "$D/runs/$name.tar" --exclude='events.out.tfevents.*' --exclude='*.safetensors' -C "$RUNS" "$name"
}
PYTHON=${PYTHON:-python3}
D=${DEVICE_DIR:-.device}   # what travels (carried); RUNS: where runs live here
RUNS=${RUNS_DIR:-runs}
if [ "${1:-}" = many ]; then
  # Several runs side by side in one call (benchmarks/ddpg_parallel.py measures whether the device gains):
  # SPEC holds a run a line, `NAME COMMAND ARGS...` (words split on spaces, no quoting; `#` lines skipped).
  # Each is `run NAME MINUTES -- COMMAND ARGS`, with the same LEAVE, HARD_S and OUT; each returns its parts
  # and its log, so at most 4 runs (8 files come back).
  spec=${2:-}; minutes=${3:-}
  [ -f "$spec" ] && [ -n "$minutes" ] || { echo "usage: lease_train.sh many SPEC MINUTES" >&2; exit 2; }
  mapfile -t lines < <(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$spec")
  n=${#lines[@]}
  [ "$n" -ge 1 ] && [ "$n" -le 4 ] || { echo "$spec: 1 to 4 runs (each returns a part and a log; 8 files come back), got $n" >&2; exit 2; }
  for line in "${lines[@]}"; do
    read -r -a words <<< "$line"
    [[ "${words[0]}" =~ ^[A-Za-z0-9_-]+$ ]] && [ "${#words[@]}" -ge 2 ] || { echo "$spec: bad line: $line" >&2; exit 2; }
  done
  install_site
  export SITE_READY=1
  pids=()
  for line in "${lines[@]}"; do
    read -r -a words <<< "$line"
    bash "$0" run "${words[0]}" "$minutes" -- "${words[@]:1}" > /dev/null &
    pids+=($!)
  done
  rc=0
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  echo "lease_train many: ${#pids[@]} run(s), exit $rc"
  exit $rc
fi
cmd=${1:-}; name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { sed -n 2,22p "$0" >&2; exit 2; }
[[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "NAME: letters, digits, '_' and '-' only" >&2; exit 2; }
case "$cmd" in
  prep)
    data=${3:-../shared/data/train}
    val=${4:-}
    for pair in "$data:train" ${val:+"$val:val"}; do
      src=${pair%:*}; sub=${pair##*:}
      [ -d "$D/data/$sub" ] && continue
      mkdir -p "$D/data/$sub"
      # lossless WebP, checked pixel-identical on read-back; the folder structure is kept
      $PYTHON - "$src" "$D/data/$sub" <<'EOF'
import sys
from pathlib import Path

import cv2
import numpy as np

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"))
for p in files:
    img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    out = dst / p.relative_to(src).with_suffix(".webp")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), img, [cv2.IMWRITE_WEBP_QUALITY, 101]):  # > 100: lossless
        sys.exit(f"cannot write {out}")
    if not np.array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), img):
        sys.exit(f"{out} is not pixel-identical to {p}")
print(f"{len(files)} images as lossless WebP in {dst}")
EOF
    done
    mkdir -p "$D/runs"
    if [ -d "$RUNS/$name" ]; then
      pack_run
      echo "$RUNS/$name packed into $D/runs/$name.tar: the next lease resumes it"
    fi
    du -sh "$D/data" "$D/runs" 2>/dev/null || true
    ;;
  run)
    minutes=${3:-}; shift 3 || true
    [ "${1:-}" = -- ] && shift
    [ -n "$minutes" ] && [ $# -gt 0 ] || { echo "usage: lease_train.sh run NAME MINUTES -- COMMAND ARGS" >&2; exit 2; }
    OUT=${OUT:-out/lease}
    mkdir -p "$OUT"
    export PYTHONUNBUFFERED=1
    install_site
    work=${WORK:-/tmp/lease_runs}
    rm -rf "${work:?}/$name"; mkdir -p "$work"
    resume=()
    if [ -f "$D/runs/$name.tar" ]; then
      tar -xf "$D/runs/$name.tar" -C "$work"
      resume=(--resume)
      echo "lease_train: resuming $name" > "$OUT/$name.log"
    else
      echo "lease_train: starting $name" > "$OUT/$name.log"
    fi
    # The trainer stops itself at its first checkpoint after MINUTES; should that checkpoint come late (a slow
    # validation, a long compile), `timeout` sends it SIGTERM HARD_S seconds after it started (default MINUTES +
    # 45 s), so that the folder is still packed before the device tool ends the call. On SIGTERM every trainer
    # saves its resume state at the step under way and exits; one that has not within 10 s is killed, and the
    # run goes on from its last checkpoint, which every trainer writes atomically.
    hard=${HARD_S:-$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 + 45 }')}
    set +e
    timeout --kill-after=10 "$hard" $PYTHON -P -m blindsr_gym.cli "$@" --out "$work/$name" "${resume[@]}" \
      --time-budget "$minutes" > >(tee -a "$OUT/$name.log") 2> >(tee -a "$OUT/$name.log" >&2)
    rc=$?
    set -e
    sleep 1
    if [ $rc = 124 ] || [ $rc = 137 ]; then
      echo "lease_train: stopped at the hard limit ($hard s); the folder holds the state saved on SIGTERM, or the last checkpoint" | tee -a "$OUT/$name.log"
    fi
    # the run folder back in parts of 15 MiB (each returned file must stay under 16 MiB)
    leave=()
    for f in ${LEAVE:-}; do leave+=(--exclude="$name/$f"); done
    tar -cf - "${leave[@]}" -C "$work" "$name" | split -b 15M -a 2 - "$OUT/$name.tar.part-"
    parts=$(ls "$OUT/$name.tar.part-"* | wc -l)
    echo "lease_train: exit $rc; $parts part(s) of $name in $OUT" | tee -a "$OUT/$name.log"
    [ "$parts" -le 6 ] || echo "lease_train: more than 6 parts: some will not come back (8 files at most)" >&2
    exit $rc
    ;;
  collect)
    from=${3:-}
    [ -n "$from" ] && ls "$from/$name.tar.part-"* > /dev/null || { echo "no $name.tar.part-* in '$from'" >&2; exit 2; }
    mkdir -p "$D/runs" "$RUNS"
    # over the run folder here, which keeps the event files of earlier leases (they do not travel out)
    cat "$from/$name.tar.part-"* | tar -xf - -C "$RUNS"
    if [ -f "$from/$name.log" ]; then cp "$from/$name.log" "$RUNS/$name/lease.log"; fi
    pack_run
    echo "$RUNS/$name updated; $D/runs/$name.tar carries it into the next lease"
    ;;
  *) sed -n 2,22p "$0" >&2; exit 2 ;;
esac
