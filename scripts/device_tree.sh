#!/usr/bin/env bash
# Make the working tree small enough to travel to a lent GPU (the device tool sends at most 64 MiB), and back.
#
#   bash scripts/device_tree.sh on    # branch device-tree: the large files untracked and ignored; wheels
#                                     # of what the device lacks (gymnasium) in .device/whl (ignored, carried)
#   bash scripts/device_tree.sh off   # back to the branch you were on; every file byte-identical
#
# `on` refuses a tree with uncommitted changes; the large files stay on disk throughout (only git forgets
# them on the temporary branch). What stays tracked: the code, amnet_x4, amgan_x4 and the actors.
# DROP="path ..." leaves more behind (a renderer-training lease: DROP="renderers/weights/amgan_x4.safetensors
# notebooks agents/weights"); `off` must then see the same DROP.
set -euo pipefail
cd "$(dirname "$0")/.."
LARGE=(checkpoints renderers/weights/dan_x4.safetensors agents/weights/kenet_x4.safetensors
       renderers/weights/amnet_adain_x4.safetensors renderers/weights/amnet_robust_x4.safetensors ${DROP:-})
exclude=.git/info/exclude
case "${1:-}" in
  on)
    [ -z "$(git status --porcelain --untracked-files=no)" ] || { echo "commit or stash your changes first" >&2; exit 1; }
    [ "$(git rev-parse --abbrev-ref HEAD)" != device-tree ] || { echo "already on device-tree" >&2; exit 1; }
    git rev-parse --abbrev-ref HEAD > .git/device-tree-from
    sha256sum $(git ls-files "${LARGE[@]}") > .git/device-tree-sums
    git checkout -q -b device-tree
    git rm -r -q --cached "${LARGE[@]}"
    for p in "${LARGE[@]}" /.device/; do echo "/${p#/}" >> "$exclude"; done
    git commit -q -m "device tree (temporary, never pushed): without the large files"
    mkdir -p .device/whl
    ls .device/whl/gymnasium-*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps --only-binary=:all: \
      --python-version 3.12 --implementation cp --platform manylinux_2_17_x86_64 --platform any \
      -d .device/whl gymnasium==1.4.0 farama-notifications==0.0.6
    size=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
    carried=$(du -sb .device | cut -f1)
    echo "device-tree: $((size / 1048576)) MiB tracked + $((carried / 1048576)) MiB in .device (limit 64 MiB)"
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
  *) echo "usage: bash scripts/device_tree.sh on|off" >&2; exit 2 ;;
esac
