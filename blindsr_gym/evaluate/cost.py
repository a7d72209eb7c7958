"""Table 6: parameters, MACs and latency of the blind pipelines at a 64x64 LR input."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from ..utils import cuda_graphed


def _cost_models() -> dict[str, tuple[list[torch.nn.Module], Callable]]:
    """name -> (modules whose parameters count, ``fn(lr)`` running the method once), random weights."""
    from ..agents.kenet import KENet
    from ..agents.networks import Actor
    from ..renderers import build_renderer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        actor, amnet, amnet_l, dan = Actor(), build_renderer("amnet"), build_renderer("amnet_l"), build_renderer("dan")
        kenet = KENet(kernel_size=amnet.codec.size)
    for m in (actor, amnet, amnet_l, dan, kenet):
        m.eval()

    def rl(renderer):
        return lambda lr: renderer(lr, renderer.codec.action_to_code(actor(lr)))

    return {"AMNet-RL": ([actor, amnet], rl(amnet)), "AMNet_L-RL": ([actor, amnet_l], rl(amnet_l)),
            "DAN (4 loops)": ([dan], dan.super_resolve),
            "KENet + AMNet": ([kenet, amnet], lambda lr: amnet(lr, amnet.codec.encode(kenet(lr))))}


def _median_latency(fn, lr: torch.Tensor, repeats: int) -> float:
    fn(lr)  # warm-up
    times = []
    for _ in range(repeats):
        if lr.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(lr)
        if lr.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


@torch.no_grad()
def cost_table(size: int = 64, repeats: int = 5, device: str | torch.device = "cpu") -> list[dict]:
    """Parameters, MACs (``torch.utils.flop_counter`` / 2) and median latency per 1x3xsize x size image.

    On a GPU each method is also timed replayed from a CUDA graph (``latency_graph_s``; the same float32
    computation with its kernel launches batched), or the reason it could not be captured
    (``graph_error``)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device(device)
    rows = []
    for name, (mods, fn) in _cost_models().items():
        for m in mods:
            m.to(device)
        lr = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        with FlopCounterMode(display=False) as fc:
            fn(lr)
        row = {"method": name, "params": int(sum(p.numel() for m in mods for p in m.parameters())),
               "macs_G": fc.get_total_flops() / 2 / 1e9, "latency_s": _median_latency(fn, lr, repeats),
               "device": str(device)}
        if device.type == "cuda":
            try:
                graphed = cuda_graphed(fn, lr)
                ref = fn(lr)
                row["graph_max_abs_diff"] = float((graphed(lr) - ref).abs().max())
                row["latency_graph_s"] = _median_latency(graphed, lr, repeats)
            except RuntimeError as e:  # a method that synchronises with the host cannot be captured
                row["graph_error"] = str(e).splitlines()[0][:200]
        rows.append(row)
    base = rows[0]
    for r in rows:
        r["macs_vs_amnet_rl"] = r["macs_G"] / base["macs_G"]
        r["latency_vs_amnet_rl"] = r["latency_s"] / base["latency_s"]
        if "latency_graph_s" in r and "latency_graph_s" in base:
            r["latency_graph_vs_amnet_rl"] = r["latency_graph_s"] / base["latency_graph_s"]
    return rows
