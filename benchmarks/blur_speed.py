"""Eq. 1's blur, the direct grouped convolution against the FFT, side by side on one device; prints JSON.

    python benchmarks/blur_speed.py [--device cuda] [--num 512] [--side 256] [--kernel 21] [--repeats 10]

Times ``degradation.blur(..., method=...)`` for a batch like one env step's HR crops (each with its own
Gaussian), the median of --repeats after a warm-up, and checks that both give the same 8-bit LR images (the
share of identical pixels and the largest difference in levels after MATLAB's bicubic x1/4).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--num", type=int, default=512)
    p.add_argument("--side", type=int, default=256)
    p.add_argument("--kernel", type=int, default=21)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from blindsr_gym.degradation import blur, imresize, to_levels
    from blindsr_gym.kernels import isotropic_gaussian

    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    # smooth random images (a blurred noise field) rather than white noise, so the levels test is realistic
    x = blur(torch.rand(args.num, 3, args.side, args.side, generator=g), isotropic_gaussian(1.5, 9)).to(dev)
    k = torch.stack([isotropic_gaussian(s, args.kernel) for s in np.linspace(0.2, 4.0, args.num)]).float().to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    out = {"command": "python " + " ".join(sys.argv), "device": str(dev), "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "shape": [args.num, 3, args.side, args.side], "kernel": args.kernel}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name()
    levels = {}
    for method in ("direct", "fft"):
        with torch.inference_mode():
            y = blur(x, k, method=method)
            sync()
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                blur(x, k, method=method)
                sync()
                times.append(time.perf_counter() - t)
            levels[method] = to_levels(imresize(y, 0.25))
        out[f"{method}_s"] = float(np.median(times))
    d = (levels["direct"] - levels["fft"]).abs()
    out["direct_over_fft"] = out["direct_s"] / out["fft_s"]
    out["lr_identical_fraction"] = float((d == 0).float().mean())
    out["lr_max_level_diff"] = int(d.max())
    print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}, indent=1))


if __name__ == "__main__":
    main()
