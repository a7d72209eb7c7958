"""Actor pre-training throughput on one device: iterations/s and achieved TFLOP/s per loss; prints JSON.

    python benchmarks/pretrain_speed.py [--device cuda] [--batch 32] [--patch 64] [--steps 50]
        [--losses l1 sigma sr] [--peak-tflops 989]

It runs ``pretrain`` itself (the trainer behind ``blindsr-gym pretrain-actor``) on the built-in photos, written
to a temporary folder as PNG: per loss, two iterations to warm up, then ``--steps`` timed by the run's own clock
(its checkpoint left out), then runs of one and of two iterations under ``torch.utils.flop_counter``: their
difference is the FLOPs of one steady iteration (the batch's Eq. 1 synthesis on the device, the actor's forward
and backward, and for ``sr`` the frozen renderer's forward and backward to the action). ``l1`` is the paper's
regression of the actions; ``sigma`` is the loss ``actor_psnr_x4`` was pre-trained with (its card: the width
head, over-estimates weighted 3); ``sr`` puts AMNet in the loop. ``--peak-tflops``: the chip's dense bf16 peak,
to report the fraction used (H100 SXM: 989).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=32, help="pairs per step (pretrain-actor's default)")
    p.add_argument("--patch", type=int, default=64, help="LR side (the env's lr_size)")
    p.add_argument("--steps", type=int, default=50, help="timed iterations per loss")
    p.add_argument("--losses", nargs="+", default=["l1", "sigma", "sr"], choices=["l1", "code", "att", "sr", "sigma"])
    p.add_argument("--amp", default="bf16", choices=["bf16", "off"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--peak-tflops", type=float, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from torch.utils.flop_counter import FlopCounterMode

    from blindsr_gym.agents.pretrain import PretrainConfig, pretrain
    from blindsr_gym.data import builtin
    from blindsr_gym.fileio import write_image

    rows = []
    with tempfile.TemporaryDirectory(prefix="blindsr-pretrain-speed-") as tmp:
        data = Path(tmp) / "hr"
        data.mkdir()
        photos = builtin()
        for name, img in zip(photos.names, photos, strict=True):
            write_image(data / f"{name}.png", img)

        def config(loss: str, iters: int, out: str) -> PretrainConfig:
            return PretrainConfig(data=str(data), out=str(Path(tmp) / out), iters=iters, batch=args.batch,
                                  patch=args.patch, loss=loss, amp=args.amp, ckpt_every=iters, device=args.device,
                                  **({"head": "sigma", "over_weight": 3.0} if loss == "sigma" else {}))

        for loss in args.losses:
            pretrain(config(loss, 2, f"{loss}_warmup"), progress=False)
            timed = pretrain(config(loss, args.steps, f"{loss}_timed"), progress=False)
            counts = []
            for n in (1, 2):
                with FlopCounterMode(display=False) as fc:
                    pretrain(config(loss, n, f"{loss}_flops{n}"), progress=False)
                counts.append(fc.get_total_flops())
            flops = counts[1] - counts[0]
            it_s = args.steps / timed["wall_s"]
            row = {"loss": loss, "it_per_s": round(it_s, 3), "pairs_per_s": round(it_s * args.batch, 1),
                   "gflop_per_iteration": round(flops / 1e9, 2),
                   "achieved_tflops": round(flops * it_s / 1e12, 3)}
            if args.peak_tflops:
                row["fraction_of_peak"] = round(flops * it_s / 1e12 / args.peak_tflops, 4)
            rows.append(row)
    out = {"command": "python " + shlex.join(["benchmarks/pretrain_speed.py", *sys.argv[1:]]),
           "device": args.device, "torch": torch.__version__, "cpu": platform.machine(),
           "threads": torch.get_num_threads(), "batch": args.batch, "lr_patch": args.patch, "amp": args.amp,
           "steps": args.steps, "rows": rows}
    if args.device == "cuda":
        out["gpu"] = torch.cuda.get_device_name()
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    if args.peak_tflops:
        out["peak_tflops"] = args.peak_tflops
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
