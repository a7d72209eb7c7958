"""Where a batched env step and a renderer training step spend their time on a device: torch.profiler's
top operators by self device time and by self CPU time, the host's kernel launches and waits for the device
(``kernel_launches``, ``graph_launches``, ``stream_waits``, one profiled step; the last includes the
benchmark's own final synchronisation), and cProfile's top Python functions; prints JSON.

    python benchmarks/profile_gpu.py [--device cuda] [--num-envs 512] [--steps 3] [--metrics psnr niqe]

The wall time per step is measured outside the profilers (best of --steps after a warm-up), so the shares
say where the time goes and the wall time how much there is. On the CPU the device columns are empty.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _profile(fn, device: str, steps: int, top: int) -> dict:
    fn()
    _sync(device)
    walls = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        _sync(device)
        walls.append(time.perf_counter() - t)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=acts) as prof:
        fn()
        _sync(device)
    ev = prof.key_averages()
    counts = {e.key: e.count for e in ev}
    host = {"kernel_launches": sum(counts.get(k, 0) for k in ("cudaLaunchKernel", "cudaLaunchKernelExC",
                                                                "cuLaunchKernelEx", "cuLaunchKernel")),
            "graph_launches": counts.get("cudaGraphLaunch", 0),
            "stream_waits": sum(counts.get(k, 0) for k in ("cudaStreamSynchronize", "cudaDeviceSynchronize"))}
    dev_key = "self_device_time_total" if hasattr(ev[0], "self_device_time_total") else "self_cuda_time_total"
    dev_total = sum(getattr(e, dev_key, 0) for e in ev)
    cpu_total = sum(e.self_cpu_time_total for e in ev)

    def rows(key, total):
        out = sorted(ev, key=lambda e: getattr(e, key, 0), reverse=True)[:top]
        return [{"op": e.key[:80], "ms": round(getattr(e, key, 0) / 1e3, 3), "calls": e.count,
                 "share": round(getattr(e, key, 0) / total, 3) if total else None} for e in out]

    cp = cProfile.Profile()
    cp.enable()
    fn()
    _sync(device)
    cp.disable()
    st = pstats.Stats(cp)
    py = sorted(((v[2], f"{k[0].split('/')[-1]}:{k[1]}:{k[2]}") for k, v in st.stats.items()), reverse=True)[:top]
    return {"wall_s_best": round(min(walls), 5), "device_busy_ms": round(dev_total / 1e3, 3),
            "device_busy_share_of_wall": round(dev_total / 1e6 / min(walls), 3) if dev_total else None,
            "cpu_self_ms": round(cpu_total / 1e3, 3), **host,
            "top_device": rows(dev_key, dev_total) if dev_total else [],
            "top_cpu": rows("self_cpu_time_total", cpu_total),
            "top_python_self_s": [{"where": w, "s": round(t, 4)} for t, w in py]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--num-envs", type=int, default=512)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--metrics", nargs="+", default=["psnr", "niqe"])
    p.add_argument("--train-batch", type=int, default=64, help="renderer training step (0: skip)")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from blindsr_gym.envs import BlindSRVectorEnv

    out: dict = {"command": "python " + " ".join(sys.argv), "device": args.device, "torch": torch.__version__}
    if args.device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name()
    n = args.num_envs
    rng = np.random.default_rng(0)
    for metric in args.metrics:
        env = BlindSRVectorEnv(num_envs=n, metric=metric, device=args.device, precision=args.precision)
        env.reset(seed=0)
        res = _profile(lambda: env.step(rng.uniform(-1, 1, (n, 15)).astype(np.float32)),  # noqa: B023
                       args.device, args.steps, args.top)
        res["steps_per_s"] = round(n / res["wall_s_best"], 1)
        out[f"env_{metric}"] = res
    if args.train_batch:
        import torch.nn.functional as F

        from blindsr_gym.data import builtin
        from blindsr_gym.kernels import KernelCodec
        from blindsr_gym.renderers import build_renderer
        from blindsr_gym.renderers.train import SyntheticPairs

        pairs = SyntheticPairs(builtin(mod=4), KernelCodec.default(), patch=64)
        model = build_renderer("amnet").to(args.device).train().to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=2e-4)
        lr, code, hr = pairs.sample(rng, args.train_batch, torch.device(args.device))
        lr = lr.contiguous(memory_format=torch.channels_last)
        dev_type = torch.device(args.device).type

        def step():
            with torch.autocast(dev_type, dtype=torch.bfloat16):
                loss = F.l1_loss(model(lr, code).float(), hr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        out["train_step_model_only"] = _profile(step, args.device, args.steps, args.top)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
