"""glibc's malloc thresholds left alone against :func:`blindsr_gym.utils.tune_cpu_malloc`, side by side; JSON.

    python benchmarks/cpu_malloc.py [--threads 2] [--rounds 3]

Each workload runs in a fresh process per setting (the thresholds are process-wide and cannot be put
back), ``--rounds`` times alternating, and reports the best time and the minor page faults of the
timed part (a fault is a fresh zero-filled page the kernel hands out), and each process's peak resident
memory. Untuned, the faults depend on the process's allocation history, so each process's figure is
listed; the ratios compare the best processes and the worst ones.

* ``render_bf16_x8``: AMNet on 8 LR crops of 64x64 under bf16 autocast, channels-last (the env's chunk);
* ``render_fp32_x8``: the same in float32 (the envs' default precision);
* ``render_fp32_128``: one 128x128 LR image in float32 (``upscale`` / ``evaluate`` on a small image);
* ``env_psnr_fp32_x16``: one step of BlindSR-PSNR-v0 batched over 16 envs, float32 (one step = 16
  episodes, each with its two renders);
* ``env_psnr_bf16_x16``: the same under bf16.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

WORKLOADS = ("render_bf16_x8", "render_fp32_x8", "render_fp32_128", "env_psnr_fp32_x16", "env_psnr_bf16_x16")


def child(workload: str, threads: int, reps: int) -> dict:
    import resource
    import time

    import numpy as np
    import torch

    from blindsr_gym.utils import resolve_device, tune_cpu_malloc

    torch.set_num_threads(threads)
    resolve_device("cpu")
    g = torch.Generator().manual_seed(0)
    if workload.startswith("env_"):
        from blindsr_gym.envs import BlindSRVectorEnv

        env = BlindSRVectorEnv(num_envs=16, metric="psnr", device="cpu", precision=workload.split("_")[2])
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        acts = [rng.uniform(-1, 1, (16, 15)).astype(np.float32) for _ in range(reps + 1)]
        run = iter(acts)

        def once():
            env.step(next(run))
    else:
        from blindsr_gym.renderers import load_renderer

        model = load_renderer("amnet_x4")
        n, side = (1, 128) if workload == "render_fp32_128" else (8, 64)
        cl = workload != "render_fp32_128"
        if cl:
            model = model.to(memory_format=torch.channels_last)
        lr = torch.rand(n, 3, side, side, generator=g)
        lr = lr.contiguous(memory_format=torch.channels_last) if cl else lr
        code = 0.01 * torch.randn(n, 15, generator=g)
        bf16 = workload.startswith("render_bf16")

        @torch.inference_mode()
        def once():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(lr, code)
    once()  # warm-up
    best, faults = float("inf"), []
    for _ in range(reps):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter()
        once()
        best = min(best, time.perf_counter() - t)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return {"s": best, "faults": int(np.median(faults)), "malloc": tune_cpu_malloc(),
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per setting and workload")
    p.add_argument("--reps", type=int, default=3, help="timed calls per process (the best counts)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.reps)))
        return
    out = {"command": "python " + " ".join(sys.argv), "threads": args.threads,
           "cpu": platform.processor() or platform.machine(), "libc": "-".join(platform.libc_ver()),
           "unit": "seconds per call (best of --reps in each process)", "workloads": {}}
    for w in WORKLOADS:
        res = {"default": [], "tuned": []}
        for _ in range(args.rounds):
            for setting in res:
                env = dict(os.environ, BLINDSR_MALLOC="default" if setting == "default" else "")
                r = subprocess.run([sys.executable, __file__, "--child", w, "--threads", str(args.threads),
                                    "--reps", str(args.reps)], env=env, capture_output=True, text=True, check=True)
                res[setting].append(json.loads(r.stdout.strip().splitlines()[-1]))
        row = {}
        for setting, runs in res.items():
            row[setting] = {"s_per_process": [round(r["s"], 4) for r in runs],
                            "page_faults_per_process": [r["faults"] for r in runs],
                            "peak_rss_mib_per_process": [r["max_rss_mib"] for r in runs], "malloc": runs[0]["malloc"]}
        d, t = (row[k]["s_per_process"] for k in ("default", "tuned"))
        row["default_over_tuned_best"] = round(min(d) / min(t), 2)
        row["default_over_tuned_worst"] = round(max(d) / max(t), 2)
        out["workloads"][w] = row
        print(w, row, file=sys.stderr)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
