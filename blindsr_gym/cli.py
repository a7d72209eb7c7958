"""The ``blindsr-gym`` command line. ``blindsr-gym demo`` runs on the built-in images, offline."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .data import builtin
    from .degradation import degrade, imresize
    from .kernels import KernelCodec, isotropic_gaussian
    from .metrics import get_metric
    from .utils import to_tensor, to_uint8

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    images = builtin(mod=args.scale)
    codec = KernelCodec.default()
    metrics = {m: get_metric(m) for m in ("psnr", "ssim", "niqe")}
    hr_size = args.lr_size * args.scale
    rows = []
    t0 = time.perf_counter()
    for i, name in enumerate(images.names):
        crop, _ = images.random_crop(rng, hr_size, index=i)
        hr = to_tensor(crop)
        for sigma in args.sigmas:
            k = isotropic_gaussian(sigma)
            lr = degrade(hr, k, args.scale)
            up = imresize(lr, float(args.scale)).clamp(0, 1)
            code = codec.encode(k)[0]
            row = {"image": name, "sigma": sigma, "lr_shape": list(lr.shape[-2:]),
                   "code_head": [round(float(c), 4) for c in code[:3]]}
            row.update({f"bicubic_{m}": round(float(f(up, hr)[0]), 4) for m, f in metrics.items()})
            row["hr_niqe"] = round(float(metrics["niqe"](hr)[0]), 4)
            rows.append(row)
            if args.out:
                out = Path(args.out)
                out.mkdir(parents=True, exist_ok=True)
                import cv2

                panel = np.concatenate([to_uint8(up)[0], to_uint8(hr)[0]], axis=1)
                cv2.imwrite(str(out / f"{name}_sigma{sigma:g}.png"), panel[..., ::-1])
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"rows": rows, "seconds": round(elapsed, 2)}, indent=1))
        return 0
    print(f"blindsr-gym demo: {len(images)} built-in images, {hr_size}x{hr_size} HR crops, x{args.scale}, "
          f"kernel codec {codec.hash}")
    print("Degrade (Eq. 1) with an isotropic Gaussian, upscale the LR bicubically, and score it.\n")
    hdr = f"{'image':<11}{'sigma':>6}{'LR':>8}{'PSNR-Y':>9}{'SSIM-Y':>9}{'NIQE':>8}{'NIQE(HR)':>10}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['image']:<11}{r['sigma']:>6.2f}{'x'.join(map(str, r['lr_shape'])):>8}"
              f"{r['bicubic_psnr']:>9.2f}{r['bicubic_ssim']:>9.4f}{r['bicubic_niqe']:>8.3f}{r['hr_niqe']:>10.3f}")
    print(f"\nPSNR/SSIM: Y channel, {4}-pixel border cropped. NIQE: MATLAB release, lower is better. "
          f"{elapsed:.1f} s.")
    if args.out:
        print(f"Panels (bicubic | HR) written to {args.out}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="blindsr-gym", description="Blind super-resolution as an RL problem.")
    p.add_argument("--version", action="version", version=f"blindsr-gym {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="degrade the built-in images, upscale bicubically, print PSNR/SSIM/NIQE")
    d.add_argument("--seed", type=int, default=0, help="seed of the crop positions")
    d.add_argument("--scale", type=int, default=4, choices=(2, 3, 4), help="downscaling factor")
    d.add_argument("--lr-size", type=int, default=64, help="LR crop side in pixels (>= 48 for NIQE at x4)")
    d.add_argument("--sigmas", type=float, nargs="+", default=[1.3, 2.6], help="kernel widths (HR pixels)")
    d.add_argument("--out", type=str, default=None, help="folder for PNG panels")
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    d.set_defaults(func=_demo)

    from .renderers import train as renderer_train

    t = sub.add_parser("train-renderer", help="train AMNet / AMNet_L on a folder of HR images (torchrun-ready)",
                       description=renderer_train.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    renderer_train.add_arguments(t)
    t.set_defaults(func=renderer_train.run)

    from . import evaluate

    e = sub.add_parser("evaluate", help="score SR methods on HR folders with fixed kernels (the paper's tables)",
                       description=evaluate.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_arguments(e)
    e.set_defaults(func=evaluate.run_cli)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = "blindsr-gym " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError, ImportError) as e:
        print(f"blindsr-gym {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
