"""DDPG training throughput, the whole loop (batched env step + replay + update): iterations/s, episodes/s,
the time the paper's budget would take, and the achieved TFLOP/s; prints JSON.

    python benchmarks/ddpg_speed.py [--env BlindSR-NIQE-v0] [--num-envs 96] [--batch 96] [--iterations 20]
        [--precision bf16] [--device cuda] [--peak-tflops 989] [--init-actor actor_psnr_x4]

It runs ``train_ddpg`` itself (the trainer behind ``blindsr-gym train --algo ddpg``) in a temporary folder:
first two iterations to warm up, then ``--iterations`` timed by the run's own clock (which leaves the
validation and the checkpoints out), then runs of one and of two iterations under ``torch.utils.flop_counter``:
their difference is the FLOPs of one steady iteration (two renders per episode, the critic's and the actor's
steps; the first reset's renders and the validation are the same in both and cancel). The paper's RL stage
is 5,000 iterations of 96 episodes.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

PAPER_ITERATIONS = 5000


def bench_config(args: argparse.Namespace, iterations: int, seed: int = 0):
    """The timed DDPG run: ``iterations`` at the benchmark's env, batch and precision, validated and
    checkpointed once, at its end (``benchmarks/ddpg_parallel.py`` runs the same)."""
    from blindsr_gym.agents import _resolve as resolve_actor
    from blindsr_gym.agents.ddpg import DDPGConfig

    env_kwargs = {"precision": args.precision, **({"cuda_graphs": True} if getattr(args, "cuda_graphs", False) else {})}
    return DDPGConfig(env_id=args.env, env_kwargs=env_kwargs, num_envs=args.num_envs, batch_size=args.batch,
                      iterations=iterations, eval_episodes=1, eval_every=iterations, ckpt_every=iterations,
                      device=args.device, seed=seed, init_actor=str(resolve_actor(args.init_actor)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="BlindSR-NIQE-v0")
    p.add_argument("--num-envs", type=int, default=96, help="episodes per iteration (the paper: 96)")
    p.add_argument("--batch", type=int, default=96, help="replay batch per update (the paper: 96)")
    p.add_argument("--iterations", type=int, default=20, help="timed iterations")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"], help="the env's renderer")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--init-actor", default="actor_psnr_x4")
    p.add_argument("--cuda-graphs", action="store_true", help="the envs replay their renders from CUDA graphs")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--peak-tflops", type=float, default=None, help="the chip's dense bf16 peak (H100 SXM: 989)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from torch.utils.flop_counter import FlopCounterMode

    from blindsr_gym.agents.ddpg import train_ddpg

    def config(iterations: int):
        return bench_config(args, iterations)

    with tempfile.TemporaryDirectory() as tmp:
        train_ddpg(config(2), Path(tmp) / "warmup", progress=False)
        timed = train_ddpg(config(args.iterations), Path(tmp) / "timed", progress=False)
        counts = []
        for n in (1, 2):
            with FlopCounterMode(display=False) as fc:
                train_ddpg(config(n), Path(tmp) / f"flops{n}", progress=False)
            counts.append(fc.get_total_flops())
    flops = counts[1] - counts[0]  # one steady iteration: the reset's first renders and the validation cancel
    s_per_it = timed["wall_s"] / args.iterations
    out = {"command": "python " + " ".join(sys.argv), "device": args.device, "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "env": args.env, "precision": args.precision, "cuda_graphs": args.cuda_graphs, "num_envs": args.num_envs,
           "batch": args.batch,
           "iterations": args.iterations, "it_per_s": round(1 / s_per_it, 3),
           "episodes_per_s": round(args.num_envs / s_per_it, 1),
           "paper_budget_s": round(PAPER_ITERATIONS * s_per_it * 96 / args.num_envs, 1),
           "paper_budget_note": f"{PAPER_ITERATIONS} iterations of 96 episodes at this rate per episode",
           "gflop_per_iteration": round(flops / 1e9, 1), "achieved_tflops": round(flops / s_per_it / 1e12, 3)}
    if args.device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name()
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    if args.peak_tflops:
        out["peak_tflops"] = args.peak_tflops
        out["fraction_of_peak"] = round(flops / s_per_it / 1e12 / args.peak_tflops, 4)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
