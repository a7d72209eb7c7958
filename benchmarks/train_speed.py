"""Renderer training throughput on one device: iterations/s and achieved TFLOP/s; prints JSON.

    python benchmarks/train_speed.py [--device cuda] [--batch 64] [--patch 64] [--steps 20] [--amp bf16]
        [--peak-tflops 989] [--compile]

One training step is what ``blindsr-gym train-renderer`` does per iteration: a batch of Eq. 1 pairs from
SyntheticPairs (on the device; the built-in images, since speed does not depend on the content), AMNet's
forward and L1 loss, backward, Adam. The FLOPs of one step are counted with ``torch.utils.flop_counter``
(forward and backward); achieved TFLOP/s = FLOPs x it/s. ``--peak-tflops``: the chip's dense bf16 peak, to
report the fraction used (H100 SXM: 989; the default is none). The same step with the data synthesis
alone and with the model alone are timed too, side by side, so the share of each is visible. The optimiser
is the trainers' (``blindsr_gym.training.adam``: fused on CUDA); its update alone is timed beside the other
implementation (``adam_step_ms``: PyTorch's default multi-tensor update against the fused one), and the model
step in the other memory layout (``channels_last_over_nchw``: > 1 when channels-last, the trainer's, is
faster). ``--compile``
also times the step with AMNet's blocks compiled (``renderers.compiled_blocks``, as ``train-renderer
--compile``) beside the eager step: ``compile_s`` (the first compiled step, compilation included),
``compiled_it_per_s`` and ``compiled_over_eager``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--patch", type=int, default=64, help="LR patch side (the paper: 64)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--amp", default="bf16", choices=["bf16", "off"])
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--compile", action="store_true", help="also time the step with AMNet's blocks compiled")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from torch.utils.flop_counter import FlopCounterMode

    from blindsr_gym.data import ImageList, builtin
    from blindsr_gym.kernels import KernelCodec
    from blindsr_gym.renderers import build_renderer, compiled_blocks
    from blindsr_gym.renderers.train import SyntheticPairs
    from blindsr_gym.training import adam
    from blindsr_gym.utils import resolve_device

    device = resolve_device(args.device)  # on the CPU also tune_cpu_malloc(), as the trainer does
    src = builtin(mod=4)
    side = args.patch * 4
    src = ImageList([im for im in src if min(im.shape[:2]) >= side], [n for n, im in zip(src.names, src, strict=True)
                                                                     if min(im.shape[:2]) >= side], mod=4)
    pairs = SyntheticPairs(src, KernelCodec.default(), patch=args.patch)
    model = build_renderer("amnet").to(device).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = adam(model.parameters(), 2e-4, device)
    rng = np.random.default_rng(0)
    amp = args.amp == "bf16"

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def data():
        return pairs.sample(rng, args.batch, device)

    compiled = False

    def model_step(lr, code, hr, channels_last=args.channels_last, opt=opt):
        if channels_last:
            lr = lr.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp), compiled_blocks(compiled):
            loss = F.l1_loss(model(lr, code).float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    batch = data()
    with FlopCounterMode(display=False) as fc:
        model_step(*batch)
    flops = fc.get_total_flops()

    def timed(fn, n):
        fn()
        sync()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return (time.perf_counter() - t) / n

    t_step = timed(lambda: model_step(*data()), args.steps)
    t_data = timed(data, args.steps)
    fixed = data()
    t_model = timed(lambda: model_step(*fixed), args.steps)
    # the update alone, each implementation on the same gradients (its own moments; the weights move a little)
    updates = {name: torch.optim.Adam(model.parameters(), lr=2e-4, fused=fused)
               for name, fused in (("foreach", False), ("fused", True))}
    t_adam = {name: timed(o.step, args.steps) for name, o in updates.items()}
    # the model step in the other memory layout, side by side (its own optimiser: Adam's moments keep the layout
    # of the weights they were made for)
    other = not args.channels_last
    model.to(memory_format=torch.channels_last if other else torch.contiguous_format)
    other_opt = adam(model.parameters(), 2e-4, device)
    t_other = timed(lambda: model_step(*fixed, channels_last=other, opt=other_opt), args.steps)
    model.to(memory_format=torch.channels_last if args.channels_last else torch.contiguous_format)
    if args.compile:
        compiled = True
        t = time.perf_counter()
        model_step(*fixed)
        sync()
        compile_s = time.perf_counter() - t
        t_compiled = timed(lambda: model_step(*data()), args.steps)
    out = {"command": "python " + " ".join(sys.argv), "device": str(device), "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "batch": args.batch, "lr_patch": args.patch, "amp": args.amp, "channels_last": args.channels_last,
           "gflop_per_step": round(flops / 1e9, 1), "it_per_s": round(1 / t_step, 3),
           "step_s": round(t_step, 5), "data_s": round(t_data, 5), "model_s": round(t_model, 5),
           "data_share": round(t_data / t_step, 3), "achieved_tflops": round(flops / t_step / 1e12, 2),
           "adam": "fused" if opt.defaults["fused"] else "default",
           "adam_step_ms": {k: round(v * 1e3, 3) for k, v in t_adam.items()},
           "adam_fused_speedup": round(t_adam["foreach"] / t_adam["fused"], 2),
           "model_s_other_layout": round(t_other, 5),
           "channels_last_over_nchw": round((t_other / t_model) if args.channels_last else (t_model / t_other), 3)}
    if args.compile:
        out.update(compile_s=round(compile_s, 2), compiled_it_per_s=round(1 / t_compiled, 3),
                   compiled_over_eager=round(t_step / t_compiled, 3),
                   compiled_achieved_tflops=round(flops / t_compiled / 1e12, 2))
        if args.peak_tflops:
            out["compiled_fraction_of_peak"] = round(flops / t_compiled / 1e12 / args.peak_tflops, 4)
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name()
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    if args.peak_tflops:
        out["peak_tflops"] = args.peak_tflops
        out["fraction_of_peak"] = round(flops / t_step / 1e12 / args.peak_tflops, 4)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
