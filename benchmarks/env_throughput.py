"""Environment steps per second: one BlindSREnv, SyncVectorEnv of N, and the batched BlindSRVectorEnv of N.

    python benchmarks/env_throughput.py [--renderer amnet_x4] [--metric niqe] [--num-envs 64]
        [--steps 3] [--device cpu] [--threads 2] [--precision fp32] [--compile]

One "env step" is one finished episode: for the vector envs a step finishes N episodes, and the
same-step autoreset renders the next N baselines inside it, so every number counts both renders
of an episode (its true-kernel baseline and its action). The single env is timed as reset + step.
All three run in the same process on the same device; ratios batched/sync and batched/single are
printed with the numbers. Each figure is the best of --repeats timings after a warm-up. On a GPU the batched
env is also timed with ``cuda_graphs=True`` (each render replayed from a CUDA graph), with the ratio.
``--compile`` also times the batched env with ``compile=True`` (AMNet's blocks through ``torch.compile``;
the compilation falls in the warm-up), beside the eager one (``compiled_over_eager``), and on a GPU with both.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from blindsr_gym.envs import BlindSREnv, BlindSRVectorEnv


def best_of(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--renderer", default="amnet_x4")
    p.add_argument("--metric", default="niqe")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=2, help="vector steps per timing")
    p.add_argument("--single-episodes", type=int, default=16, help="single-env episodes per timing")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-sync", action="store_true", help="skip SyncVectorEnv (slow on CPU)")
    p.add_argument("--compile", action="store_true", help="also time the batched env with compile=True")
    p.add_argument("--sync-envs", type=int, default=None,
                   help="SyncVectorEnv's size (default --num-envs); its steps/s hardly depend on it, as it "
                        "steps its envs one after the other, and building hundreds of envs takes minutes")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    kw = dict(renderer=args.renderer, metric=args.metric, device=args.device, precision=args.precision)
    n = args.num_envs
    rng = np.random.default_rng(0)
    out = {"command": "python " + " ".join(sys.argv), "device": args.device, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "renderer": args.renderer, "metric": args.metric, "precision": args.precision, "num_envs": n,
           "lr_size": 64}
    if args.device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name()

    def sync_cuda():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    single = BlindSREnv(**kw)
    single.reset(seed=0)

    def run_single():
        for _ in range(args.single_episodes):
            single.reset()
            single.step(rng.uniform(-1, 1, 15).astype(np.float32))
        sync_cuda()

    t = best_of(run_single, args.repeats)
    out["single_steps_per_s"] = args.single_episodes / t

    def vector_rate(venv, m=n):
        venv.reset(seed=0)

        def run():
            for _ in range(args.steps):
                venv.step(rng.uniform(-1, 1, (m, 15)).astype(np.float32))
            sync_cuda()

        return m * args.steps / best_of(run, args.repeats)

    out["batched_steps_per_s"] = vector_rate(BlindSRVectorEnv(num_envs=n, **kw))
    out["batched_over_single"] = out["batched_steps_per_s"] / out["single_steps_per_s"]
    if args.device.startswith("cuda"):
        out["batched_graphs_steps_per_s"] = vector_rate(BlindSRVectorEnv(num_envs=n, cuda_graphs=True, **kw))
        out["graphs_over_eager"] = out["batched_graphs_steps_per_s"] / out["batched_steps_per_s"]
    if args.compile:
        out["batched_compiled_steps_per_s"] = vector_rate(BlindSRVectorEnv(num_envs=n, compile=True, **kw))
        out["compiled_over_eager"] = out["batched_compiled_steps_per_s"] / out["batched_steps_per_s"]
        if args.device.startswith("cuda"):
            out["batched_graphs_compiled_steps_per_s"] = vector_rate(
                BlindSRVectorEnv(num_envs=n, cuda_graphs=True, compile=True, **kw))
            out["graphs_compiled_over_eager"] = out["batched_graphs_compiled_steps_per_s"] / out["batched_steps_per_s"]
    if not args.skip_sync:
        ns = args.sync_envs or n
        out["sync_num_envs"] = ns
        sync = SyncVectorEnv([lambda: BlindSREnv(**kw) for _ in range(ns)], autoreset_mode=AutoresetMode.SAME_STEP)
        out["sync_steps_per_s"] = vector_rate(sync, ns)
        out["batched_over_sync"] = out["batched_steps_per_s"] / out["sync_steps_per_s"]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
