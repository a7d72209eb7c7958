"""DDPG runs side by side on one device: does a lease fit several runs (seeds, Eq. 10 and Eq. 11) at once?

    python benchmarks/ddpg_parallel.py --processes 1 2 3 [--env BlindSR-NIQE-v0] [--num-envs 96] [--batch 96]
        [--iterations 20] [--precision bf16] [--device cuda]

One DDPG iteration at the paper's batch leaves most of a large GPU idle (3% of its bf16 peak on an H200,
``docs/gpu/nvidia-h200/ddpg_niqe_bf16.json``): its many small kernels wait on the host. For each count P, P
processes each run ``train_ddpg`` (the trainer behind ``blindsr-gym train --algo ddpg``, its own seed) in a
temporary folder: two iterations to warm up, then, once all P are warm, ``--iterations`` timed by each run's own
clock (validation and checkpoints left out). Prints JSON: per P, each process's iterations/s, their sum, and the
sum over the single process's rate measured in the same run (``aggregate_over_single``). Above 1, P runs in a
lease finish sooner together than one after the other; each run's own rate says whether one still fits a call.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def worker(args: argparse.Namespace) -> None:
    """One process: warm up, wait for the others at the barrier, run the timed iterations, print JSON."""
    if args.threads:
        torch.set_num_threads(args.threads)
    from ddpg_speed import bench_config  # this script's folder is on sys.path

    from blindsr_gym.agents.ddpg import train_ddpg

    def config(iterations: int):
        return bench_config(args, iterations, seed=args.seed)

    folder = Path(args.worker)
    train_ddpg(config(2), folder / "warmup", progress=False)
    (folder / "ready").touch()
    barrier = folder.parent
    deadline = time.monotonic() + 600
    while len(list(barrier.glob("*/ready"))) < args.expect:
        if time.monotonic() > deadline:
            sys.exit("the other processes never became ready")
        time.sleep(0.05)
    timed = train_ddpg(config(args.iterations), folder / "timed", progress=False)
    print(json.dumps({"seed": args.seed, "iterations": args.iterations, "wall_s": timed["wall_s"],
                      "it_per_s": args.iterations / timed["wall_s"]}))


def launch(args: argparse.Namespace, p: int, root: Path) -> list[dict]:
    """P workers at once; their JSON results (raises if one fails)."""
    base = [sys.executable, __file__, "--env", args.env, "--num-envs", str(args.num_envs), "--batch",
            str(args.batch), "--iterations", str(args.iterations), "--precision", args.precision, "--device",
            args.device, "--init-actor", args.init_actor, "--threads", str(args.threads), "--expect", str(p)]
    procs = []
    for i in range(p):
        folder = root / f"p{p}" / f"w{i}"
        folder.mkdir(parents=True)
        procs.append(subprocess.Popen([*base, "--worker", str(folder), "--seed", str(i)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"a worker failed ({proc.returncode}): {stderr[-1500:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3], help="counts of runs side by side")
    p.add_argument("--env", default="BlindSR-NIQE-v0")
    p.add_argument("--num-envs", type=int, default=96, help="episodes per iteration (the paper: 96)")
    p.add_argument("--batch", type=int, default=96, help="replay batch per update (the paper: 96)")
    p.add_argument("--iterations", type=int, default=20, help="timed iterations per process")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--init-actor", default="actor_psnr_x4")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads per process (0: torch's default)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--expect", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if 1 not in args.processes or any(n < 1 for n in args.processes):
        p.error("--processes must include 1 (the single run every count is compared with) and be >= 1")
    rows = {}
    with tempfile.TemporaryDirectory(prefix="blindsr-ddpg-parallel-") as tmp:
        for n in sorted(set(args.processes)):
            t0 = time.perf_counter()
            res = launch(args, n, Path(tmp))
            rows[n] = {"processes": n, "it_per_s_each": [round(r["it_per_s"], 3) for r in res],
                       "aggregate_it_per_s": round(sum(r["it_per_s"] for r in res), 3),
                       "launch_to_finish_s": round(time.perf_counter() - t0, 1)}
    single = rows[1]["aggregate_it_per_s"]
    for r in rows.values():
        r["aggregate_over_single"] = round(r["aggregate_it_per_s"] / single, 3)
        r["paper_budget_s_each"] = round(5000 / min(r["it_per_s_each"]), 1)  # the slowest run's 5,000 iterations
    print(json.dumps({"command": "python " + shlex.join(["benchmarks/ddpg_parallel.py", *sys.argv[1:]]),
                      "device": args.device, "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
                      "torch": torch.__version__, "cpu": platform.machine(), "env": args.env,
                      "num_envs": args.num_envs, "batch": args.batch, "precision": args.precision,
                      "iterations": args.iterations, "rows": list(rows.values())}, indent=1))


if __name__ == "__main__":
    main()
