"""Where a batched env step spends its time: cProfile of a few steps, the top functions as JSON.

    python benchmarks/profile_env.py [--num-envs 16] [--steps 3] [--precision bf16] [--metric psnr] [--threads 2]

``conv_tflops`` is the renderer's convolution rate this implies: two renders per episode, each
``--macs-per-image`` G MACs (AMNet at 64x64 LR: 5.1), over the time spent in ``torch.conv2d``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--metric", default="psnr")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--macs-per-image", type=float, default=5.1, help="G MACs of one render")
    p.add_argument("--top", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from blindsr_gym.envs import BlindSRVectorEnv

    n = args.num_envs
    env = BlindSRVectorEnv(num_envs=n, metric=args.metric, device="cpu", precision=args.precision)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    env.step(rng.uniform(-1, 1, (n, 15)).astype(np.float32))  # warm-up
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.steps):
        env.step(rng.uniform(-1, 1, (n, 15)).astype(np.float32))
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    rows = sorted(((v[2], f"{k[0].split('/')[-1]}:{k[2]}") for k, v in stats.stats.items()), reverse=True)
    conv = sum(v[2] for k, v in stats.stats.items() if k[2] == "<built-in method torch.conv2d>")
    macs = 2 * n * args.steps * args.macs_per_image * 1e9
    print(json.dumps({"command": "python " + " ".join(sys.argv), "threads": torch.get_num_threads(),
                      "total_s": round(total, 3), "conv2d_s": round(conv, 3), "conv2d_share": round(conv / total, 3),
                      "conv_tflops": round(2 * macs / conv / 1e12, 3) if conv else None,
                      "top_self_time": [{"where": w, "s": round(t, 3), "share": round(t / total, 3)}
                                        for t, w in rows[:args.top]]}, indent=1))


if __name__ == "__main__":
    main()
