#!/usr/bin/env bash
# Make the working tree small enough to travel to a lent GPU (the device tool sends at most 64 MiB), and back.
#
#   bash scripts/device_tree.sh on    # branch device-tree: the large files untracked and ignored; wheels
#                                     # of what the device lacks (gymnasium) in .device/whl (ignored, carried)
#   bash scripts/device_tree.sh off   # back to the branch you were on; every file byte-identical
#   bash scripts/device_tree.sh size [CARRY ...]   # MiB a device call would send with these carried paths,
#                                     # from any branch, touching nothing; exit 1 over the tool's 64 MiB
#
# `on` refuses a tree with uncommitted changes; the large files stay on disk throughout (only git forgets
# them on the temporary branch). What stays tracked: the code, amnet_x4, amgan_x4 and the actors.
# DROP="path ..." leaves more behind (a renderer-training lease: DROP="renderers/weights/amgan_x4.safetensors
# notebooks agents/weights"); `off` must then see the same DROP.
set -euo pipefail
cd "$(dirname "$0")/.."
LARGE=(checkpoints renderers/weights/dan_x4.safetensors agents/weights/kenet_x4.safetensors
       renderers/weights/amnet_adain_x4.safetensors renderers/weights/amnet_robust_x4.safetensors
       renderers/weights/amnet_robust2_x4.safetensors renderers/weights/amnet2_x4.safetensors
       renderers/weights/amgan2_x4.safetensors ${DROP:-})
exclude=.git/info/exclude
LIMIT=$((64 * 1048576))
# bytes in the files named by NUL-separated paths on stdin (0 for none)
bytes() { xargs -0 -r du -b | awk '{ s += $1 } END { print s + 0 }'; }
case "${1:-}" in
  on)
    [ -z "$(git status --porcelain --untracked-files=no)" ] || { echo "commit or stash your changes first" >&2; exit 1; }
    [ "$(git rev-parse --abbrev-ref HEAD)" != device-tree ] || { echo "already on device-tree" >&2; exit 1; }
    git rev-parse --abbrev-ref HEAD > .git/device-tree-from
    sha256sum $(git ls-files "${LARGE[@]}") > .git/device-tree-sums
    git checkout -q -b device-tree
    git rm -r -q --cached --ignore-unmatch "${LARGE[@]}"  # a large file a later commit removed is no error
    for p in "${LARGE[@]}" /.device/; do echo "/${p#/}" >> "$exclude"; done
    git commit -q -m "device tree (temporary, never pushed): without the large files"
    mkdir -p .device/whl
    ls .device/whl/gymnasium-*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps --only-binary=:all: \
      --python-version 3.12 --implementation cp --platform manylinux_2_17_x86_64 --platform any \
      -d .device/whl gymnasium==1.4.0 farama-notifications==0.0.6
    bash "$0" size .device/whl || true   # the suite's carry
    bash "$0" size .device || true       # a training lease's
    ;;
  size)
    # What travels (the device tool's README): tracked and untracked-but-not-ignored files, less what
    # `on` untracks, plus the carried paths. On device-tree the LARGE files are already untracked.
    shift
    skip=(); for p in "${LARGE[@]}"; do skip+=(":(exclude)$p"); done
    tree=$({ git ls-files -z -- . "${skip[@]}"; git ls-files -z --others --exclude-standard -- . "${skip[@]}"; } | bytes)
    total=$tree; line="$((tree / 1024)) KiB tree"
    for c in "$@"; do
      [ -e "$c" ] || { echo "carry path $c does not exist" >&2; exit 2; }
      b=$(find "$c" -type f -print0 | bytes); total=$((total + b)); line+=" + $((b / 1024)) KiB $c"
    done
    verdict=ok; [ "$total" -le "$LIMIT" ] || verdict="OVER the device tool's 64 MiB: DROP more or carry less"
    echo "travels: $line = $((total / 1048576)).$(( (total % 1048576) * 10 / 1048576 )) MiB: $verdict"
    [ "$total" -le "$LIMIT" ]
    ;;
  off)
    [ "$(git rev-parse --abbrev-ref HEAD)" = device-tree ] || { echo "not on device-tree" >&2; exit 1; }
    [ -z "$(git status --porcelain --untracked-files=no)" ] || { echo "commit or drop the changes on device-tree first" >&2; exit 1; }
    back=$(cat .git/device-tree-from)
    git checkout -q "$back"
    git branch -q -D device-tree
    for p in "${LARGE[@]}" /.device/; do
      line="/${p#/}"; grep -vxF "$line" "$exclude" > "$exclude.tmp" || true; mv "$exclude.tmp" "$exclude"
    done
    sha256sum --quiet -c .git/device-tree-sums && echo "back on $back; the large files are byte-identical"
    rm -f .git/device-tree-from .git/device-tree-sums
    git status --short
    ;;
  *) echo "usage: bash scripts/device_tree.sh on|off|size [CARRY ...]" >&2; exit 2 ;;
esac
