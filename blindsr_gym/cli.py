"""The ``blindsr-gym`` command line. ``blindsr-gym demo`` runs on the built-in images, offline."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from .errors import InputError
from .utils import NonFiniteOutputError

__all__ = ["main", "EXPECTED_ERRORS"]


def _demo(args: argparse.Namespace) -> int:
    """The blind pipeline on the built-in images: the shipped actor reads each LR image's kernel width, the
    renderer upscales with it, and Eq. 8 scores it against rendering with the true kernel."""
    from .agents import load_actor
    from .envs import BlindSREnv
    from .fileio import check_writable, write_image
    from .metrics import niqe, psnr
    from .renderers import read_model_card
    from .utils import to_uint8

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.lr_size < 48:
        raise InputError(f"--lr-size {args.lr_size} is too small: the demo reports NIQE, which needs SR images of "
                         "at least 192x192 pixels, i.e. --lr-size >= 48 at x4")
    out = None if args.no_figure else check_writable(args.out)
    t0 = time.perf_counter()
    env = BlindSREnv(renderer=args.renderer, metric="psnr", lr_size=args.lr_size, device=args.device)
    core = env.core
    actor = load_actor(args.actor, device=core.device, codec=core.codec)
    card = read_model_card(args.renderer) if args.renderer != "bicubic" else {}
    rows, tiles = [], []
    for i, name in enumerate(core.source.names):
        for sigma in args.sigmas:
            obs, info = env.reset(seed=args.seed, options={"image_index": i, "sigma": sigma})
            lr = env._lr
            with torch.no_grad():
                action = actor(lr)
                sigma_hat = float(actor.sigma(lr)[0]) if actor.head_kind == "sigma" else None
            _, reward, _, _, info = env.step(action[0].cpu().numpy())
            bicubic = core.bicubic(lr)
            rows.append({
                "image": name, "sigma": sigma, "sigma_estimate": None if sigma_hat is None else round(sigma_hat, 3),
                "bicubic_psnr": round(float(psnr(bicubic, env._hr, crop_border=core.scale)[0]), 3),
                "actor_psnr": round(info["psnr"], 3), "true_kernel_psnr": round(info["psnr_gt"], 3),
                "reward": round(reward, 3),
                "actor_niqe": round(float(niqe(env._sr)[0]), 3),
                "true_kernel_niqe": round(float(niqe(env._sr_gt)[0]), 3),
                "hr_niqe": round(float(niqe(env._hr)[0]), 3),
            })
            if out is not None:
                r = rows[-1]
                est = f"{sigma_hat:.2f}" if sigma_hat is not None else "?"
                tiles.append([(f"{name}: bicubic {r['bicubic_psnr']:.2f} dB", bicubic),
                              (f"AMNet-RL, width read {est}: {r['actor_psnr']:.2f} dB", env._sr),
                              (f"true width {sigma:g}: {r['true_kernel_psnr']:.2f} dB", env._sr_gt),
                              ("HR", env._hr)])
    elapsed = time.perf_counter() - t0
    result = {"renderer": str(args.renderer), "actor": str(args.actor),
              "renderer_iterations": card.get("training", {}).get("iterations"), "codec": core.codec.hash,
              "lr_size": core.lr_size, "scale": core.scale, "rows": rows, "seconds": round(elapsed, 2)}
    if out is not None:
        figure = out / "demo.png"
        write_image(figure, _figure(tiles, to_uint8))
        result["figure"] = str(figure)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"blindsr-gym demo: blind SR of {len(core.source)} built-in images ({core.lr_size}x{core.lr_size} LR, "
          f"x{core.scale}): the actor {args.actor} reads each LR image's blur width, the renderer {args.renderer}"
          + (f" ({result['renderer_iterations']} training iterations)" if result["renderer_iterations"] else "")
          + " upscales with it.\nThe reward (Eq. 8) is its PSNR minus the PSNR of rendering with the true kernel"
            " (0: as good as knowing the kernel).\n")
    hdr = (f"{'image':<11}{'width':>6}{'read':>6}{'bicubic':>9}{'AMNet-RL':>9}{'true k':>8}{'reward':>8}"
           f"{'NIQE RL':>9}{'NIQE HR':>9}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        est = f"{r['sigma_estimate']:>6.2f}" if r["sigma_estimate"] is not None else f"{'-':>6}"
        print(f"{r['image']:<11}{r['sigma']:>6.2f}{est}{r['bicubic_psnr']:>9.2f}{r['actor_psnr']:>9.2f}"
              f"{r['true_kernel_psnr']:>8.2f}{r['reward']:>8.2f}{r['actor_niqe']:>9.3f}{r['hr_niqe']:>9.3f}")
    mean = sum(r["reward"] for r in rows) / len(rows)
    print(f"\nPSNR in dB on the Y channel, {core.scale}-pixel border cropped; NIQE: MATLAB release, lower is "
          f"better. Mean reward {mean:+.2f} dB. {elapsed:.1f} s.")
    if out is not None:
        print(f"Figure: {result['figure']} (per row: bicubic | AMNet-RL with the width it read | the true "
              "kernel | HR)")
    return 0


def _figure(rows: list[list[tuple[str, torch.Tensor]]], to_uint8) -> np.ndarray:
    """A grid of labelled tiles (uint8 RGB): one row per episode, a caption above each tile."""
    import cv2

    grid = []
    for row in rows:
        cells = []
        for caption, img in row:
            tile = to_uint8(img.float().cpu())[0]
            label = np.full((20, tile.shape[1], 3), 255, np.uint8)
            cv2.putText(label, caption, (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
            cells += [np.vstack([label, tile]), np.full((tile.shape[0] + 20, 4, 3), 255, np.uint8)]
        grid += [np.hstack(cells[:-1]), np.full((6, sum(c.shape[1] for c in cells[:-1]), 3), 255, np.uint8)]
    return np.vstack(grid[:-1])


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .agents import DEFAULT_PSNR_ACTOR

    p = argparse.ArgumentParser(prog="blindsr-gym", description="Blind super-resolution as an RL problem.")
    p.add_argument("--version", action="version", version=f"blindsr-gym {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="blind SR of the built-in images: the shipped actor reads each blur width, "
                                    "AMNet upscales with it (BlindSR-PSNR-v0 episodes)")
    d.add_argument("--renderer", default="amnet_x4", help="shipped name, checkpoint path, or 'bicubic'")
    d.add_argument("--actor", default=DEFAULT_PSNR_ACTOR, help="the kernel estimator (shipped name or .safetensors)")
    d.add_argument("--seed", type=int, default=0, help="seed of the crop positions")
    d.add_argument("--lr-size", type=int, default=64, help="LR crop side in pixels (>= 48 for NIQE at x4)")
    d.add_argument("--sigmas", type=float, nargs="+", default=[1.3, 2.6], help="true kernel widths (HR pixels)")
    d.add_argument("--out", type=str, default="runs/demo", help="folder for the figure demo.png (default runs/demo)")
    d.add_argument("--no-figure", action="store_true", help="write no figure")
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
