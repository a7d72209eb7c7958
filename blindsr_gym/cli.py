"""The ``blindsr-gym`` command line. ``blindsr-gym demo`` runs on the built-in images, offline."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .utils import NonFiniteOutputError

__all__ = ["main", "EXPECTED_ERRORS"]


def _demo(args: argparse.Namespace) -> int:
    """One episode of BlindSR-PSNR-v0 per built-in image and kernel width, three ways."""
    from .envs import BlindSREnv
    from .fileio import check_writable, write_image
    from .metrics import niqe, psnr
    from .renderers import read_model_card

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.lr_size < 48:
        raise InputError(f"--lr-size {args.lr_size} is too small: the demo reports NIQE, which needs SR images of "
                         "at least 192x192 pixels, i.e. --lr-size >= 48 at x4")
    if args.out:
        check_writable(args.out)
    t0 = time.perf_counter()
    env = BlindSREnv(renderer=args.renderer, metric="psnr", lr_size=args.lr_size, device=args.device,
                     render_mode="rgb_array" if args.out else None)
    core = env.core
    card = read_model_card(args.renderer) if args.renderer != "bicubic" else {}
    mid = np.zeros(env.action_space.shape, np.float32)  # the centre of the code box: a "typical" kernel
    rows = []
    for i, name in enumerate(core.source.names):
        for sigma in args.sigmas:
            _, info = env.reset(seed=args.seed, options={"image_index": i, "sigma": sigma})
            bicubic = core.bicubic(env._lr)
            _, r_mid, _, _, info_mid = env.step(mid)
            env.reset(seed=args.seed, options={"image_index": i, "sigma": sigma})
            _, r_gt, _, _, info_gt = env.step(info["action_gt"])
            rows.append({
                "image": name, "sigma": sigma,
                "bicubic_psnr": round(float(psnr(bicubic, env._hr, crop_border=core.scale)[0]), 3),
                "true_kernel_psnr": round(info_gt["psnr"], 3),
                "mid_kernel_psnr": round(info_mid["psnr"], 3), "mid_kernel_reward": round(r_mid, 3),
                "true_kernel_reward": round(r_gt, 6),
                "bicubic_niqe": round(float(niqe(bicubic)[0]), 3),
                "true_kernel_niqe": round(float(niqe(env._sr)[0]), 3),
                "hr_niqe": round(float(niqe(env._hr)[0]), 3),
            })
            if args.out:
                write_image(Path(args.out) / f"{name}_sigma{sigma:g}.png", env.render())
    elapsed = time.perf_counter() - t0
    result = {"renderer": str(args.renderer), "renderer_iterations": card.get("training", {}).get("iterations"),
              "codec": core.codec.hash, "lr_size": core.lr_size, "scale": core.scale, "rows": rows,
              "seconds": round(elapsed, 2)}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"blindsr-gym demo: BlindSR-PSNR-v0 episodes on {len(core.source)} built-in images, "
          f"{core.lr_size}x{core.lr_size} LR, x{core.scale}, renderer {args.renderer}"
          + (f" ({result['renderer_iterations']} training iterations)" if result["renderer_iterations"] else ""))
    print("Each LR image is rendered with the true kernel's code (the non-blind upper bound, reward 0) and with\n"
          "the code box's centre (action 0, a guess); the reward (Eq. 8) is the guess's PSNR minus the true one's.\n")
    hdr = (f"{'image':<11}{'sigma':>6}{'bicubic':>9}{'true k':>8}{'guess':>8}{'reward':>8}"
           f"{'NIQE bic':>9}{'NIQE SR':>9}{'NIQE HR':>9}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['image']:<11}{r['sigma']:>6.2f}{r['bicubic_psnr']:>9.2f}{r['true_kernel_psnr']:>8.2f}"
              f"{r['mid_kernel_psnr']:>8.2f}{r['mid_kernel_reward']:>8.2f}{r['bicubic_niqe']:>9.3f}"
              f"{r['true_kernel_niqe']:>9.3f}{r['hr_niqe']:>9.3f}")
    print(f"\nPSNR in dB on the Y channel, {core.scale}-pixel border cropped; NIQE: MATLAB release, lower is "
          f"better. {elapsed:.1f} s.")
    if args.out:
        print(f"Panels written to {args.out}/: bicubic | SR with the action (here the true kernel's) | "
              "SR with the true kernel | HR")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="blindsr-gym", description="Blind super-resolution as an RL problem.")
    p.add_argument("--version", action="version", version=f"blindsr-gym {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="episodes of BlindSR-PSNR-v0 on the built-in images with the shipped renderer")
    d.add_argument("--renderer", default="amnet_x4", help="shipped name, checkpoint path, or 'bicubic'")
    d.add_argument("--seed", type=int, default=0, help="seed of the crop positions")
    d.add_argument("--lr-size", type=int, default=64, help="LR crop side in pixels (>= 48 for NIQE at x4)")
    d.add_argument("--sigmas", type=float, nargs="+", default=[1.3, 2.6], help="kernel widths (HR pixels)")
    d.add_argument("--out", type=str, default=None, help="folder for PNG panels")
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    d.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    d.set_defaults(func=_demo)

    from . import evaluate, upscale
    from .agents import pretrain
    from .agents import train as agent_train
    from .renderers import train as renderer_train

    k = sub.add_parser("train-kenet", help="train the KENet kernel-estimation baseline (adaptive attention loss)",
                       description=pretrain.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pretrain.add_kenet_arguments(k)
    k.set_defaults(func=pretrain.run)

    for name, module, func, help_ in (
        ("train-renderer", renderer_train, renderer_train.run,
         "train AMNet / AMNet_L / DAN on a folder of HR images (torchrun-ready)"),
        ("train", agent_train, agent_train.run, "train a kernel estimator by RL (our DDPG or Stable-Baselines3)"),
        ("pretrain-actor", pretrain, pretrain.run, "supervised pre-training of the kernel predictor"),
        ("evaluate", evaluate, evaluate.run_cli, "score SR methods on HR folders with fixed kernels (paper tables)"),
        ("upscale", upscale, upscale.run_cli,
         "upscale your own LR images with the shipped models (blind, or a known blur)"),
    ):
        sp = sub.add_parser(name, help=help_, description=module.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sp)
        sp.set_defaults(func=func)
    return p


#: Failures the user can act on, reported as one line (exit 2). Anything else is a bug: its traceback stays.
EXPECTED_ERRORS = (InputError, NonFiniteOutputError, OSError, ImportError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = "blindsr-gym " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except EXPECTED_ERRORS as e:  # OSError covers missing, existing and unwritable files
        print(f"blindsr-gym {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
