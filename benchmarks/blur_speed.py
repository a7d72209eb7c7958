"""Eq. 1's blur and downscaling, three ways side by side on one device; prints JSON.

    python benchmarks/blur_speed.py [--device cuda] [--num 512] [--side 256] [--kernel 21] [--repeats 10]

For a batch like one env step's HR crops (each with its own Gaussian), the median of --repeats after a warm-up
of the blur followed by MATLAB's bicubic x1/4 (what Eq. 1 does before the noise):

* ``direct``: ``blur(..., method="direct")`` (a grouped convolution) then ``imresize``;
* ``fft``: ``blur(..., method="fft")`` then ``imresize``;
* ``separable``: ``eq1``'s path for separable kernels (``taps``): the blur folded into the resize matrices,
  two matrix products per image.

Each is checked against ``direct``: the share of identical 8-bit LR pixels and the largest difference in levels.
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
    from blindsr_gym.degradation import _blur_downscale_separable, blur, imresize, to_levels
    from blindsr_gym.kernels import isotropic_gaussian, isotropic_taps

    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    # smooth random images (a blurred noise field) rather than white noise, so the levels test is realistic
    x = blur(torch.rand(args.num, 3, args.side, args.side, generator=g), isotropic_gaussian(1.5, 9)).to(dev)
    sigmas = np.linspace(0.2, 4.0, args.num)
    k = isotropic_gaussian(sigmas, args.kernel).to(dev)
    taps = torch.from_numpy(isotropic_taps(sigmas, args.kernel)).to(dev)
    ways = {"direct": lambda: imresize(blur(x, k, method="direct"), 0.25),
            "fft": lambda: imresize(blur(x, k, method="fft"), 0.25),
            "separable": lambda: _blur_downscale_separable(x, taps, 4)}

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    out = {"command": "python " + " ".join(sys.argv), "device": str(dev), "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "shape": [args.num, 3, args.side, args.side], "kernel": args.kernel}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name()
    levels = {}
    for way, fn in ways.items():
        with torch.inference_mode():
            levels[way] = to_levels(fn())
            sync()
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                fn()
                sync()
                times.append(time.perf_counter() - t)
        out[f"{way}_s"] = float(np.median(times))
    for way in ("fft", "separable"):
        d = (levels["direct"] - levels[way]).abs()
        out[f"direct_over_{way}"] = out["direct_s"] / out[f"{way}_s"]
        out[f"{way}_lr_identical_fraction"] = float((d == 0).float().mean())
        out[f"{way}_lr_max_level_diff"] = int(d.max())
    print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}, indent=1))


if __name__ == "__main__":
    main()
