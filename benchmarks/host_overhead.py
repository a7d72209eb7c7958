"""The host's share of an env step, each part side by side with the way it was done before; prints JSON.

    python benchmarks/host_overhead.py [--device cpu] [--threads 2] [--repeats 20]

**Renders** (``render``): AMNet's forward with the blocks' code-dependent FC layers batched before the body
(``batched_conditions=True``, the default) against each AMLayer running its own (``False``). For each
precision (fp32, bf16 autocast) and path:

* ``ops``: the tensor operations a forward dispatches (views and allocations excluded), counted with a
  ``TorchDispatchMode``. On a GPU nearly each one is a kernel launch, which costs the CPU several
  microseconds whatever the tensor's size: at batch 1 a render is bound by them.
* ``latency_ms``: median wall time of a batch-1 forward at ``--size`` (64: the paper's Table 6 setting),
  and of a batch-``--batch`` forward (the env's step renders a batch).

Random weights (``build_renderer("amnet")``): the cost does not depend on them. The ratios are
per-block over batched.

On a GPU also ``fused_conv_relu`` (``conv_relu``): the batch-``--batch`` bf16 forward with each block's conv1,
bias and ReLU as one cuDNN call against the three separate passes, and the largest difference of the outputs.

**NIQE** (``niqe``): the operations one call of ``niqe`` dispatches for ``--niqe-images`` 256x256 images
(on the CPU in passes of a few images, on a GPU in one), its reads of device values and its median time,
with its block features fused (one filter pass, one AGGD fit for the five coefficient maps; the default off
the CPU) and separate (the CPU's default).

**Episode draws** (``draw``): ``EnvCore.draw_all`` for ``--envs`` generators, which makes the kernels of
all episodes in one call of the family, against drawing them one by one (``EnvCore.draw``, a batch of one
each: what every episode cost before), median milliseconds. The drawing is CPU work on any device.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import sys
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from blindsr_gym.renderers import build_renderer
from blindsr_gym.utils import resolve_device

# operations that launch no kernel: views, metadata and allocations
NO_KERNEL = {"view", "_unsafe_view", "as_strided", "slice", "select", "expand", "unsqueeze", "squeeze", "t",
             "transpose", "permute", "detach", "alias", "_reshape_alias", "reshape", "split", "split_with_sizes",
             "unbind", "lift_fresh", "empty", "empty_strided", "empty_like", "numpy_T", "to"}


class _Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name == "to":  # aten.to is a no-op when nothing changes; count it when it made a new tensor
            if isinstance(out, torch.Tensor) and isinstance(args[0], torch.Tensor) and out is not args[0]:
                self.ops["_to_copy"] += 1
        elif name not in NO_KERNEL:
            self.ops[name] += 1
        return out


def _median_ms(fn, repeats: int, device: torch.device) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    times.sort()
    return 1e3 * times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--size", type=int, default=64, help="LR side")
    ap.add_argument("--batch", type=int, default=16, help="the second, batched forward")
    ap.add_argument("--envs", type=int, nargs="+", default=[96, 512], help="episodes drawn at once")
    ap.add_argument("--niqe-images", type=int, default=16, help="images of the NIQE call")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    g = torch.Generator().manual_seed(0)
    model = build_renderer("amnet").eval().requires_grad_(False).to(device).to(memory_format=torch.channels_last)
    res: dict = {"command": "python " + " ".join(sys.argv), "device": str(device), "torch": torch.__version__,
                 "threads": args.threads, "cpu": platform.processor() or platform.machine(), "size": args.size}
    if device.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name()
    inputs = {b: (torch.rand(b, 3, args.size, args.size, generator=g).to(device)
                  .contiguous(memory_format=torch.channels_last), torch.rand(b, 15, generator=g).to(device) * 0.01)
              for b in (1, args.batch)}
    for prec in ("fp32", "bf16"):
        for path, batched in (("batched", True), ("per_block", False)):
            model.batched_conditions = batched

            def fwd(b, prec=prec):
                with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                            enabled=prec == "bf16"):
                    return model(*inputs[b])
            fwd(1)
            with _Count() as count:
                fwd(1)
            key = f"{prec}_{path}"
            res[key] = {"ops": sum(count.ops.values()), "top_ops": dict(count.ops.most_common(8)),
                        "latency_ms_batch1": round(_median_ms(lambda: fwd(1), args.repeats, device), 3),
                        f"latency_ms_batch{args.batch}": round(_median_ms(lambda: fwd(args.batch), args.repeats,
                                                                          device), 3)}
        a, b = res[f"{prec}_batched"], res[f"{prec}_per_block"]
        res[f"{prec}_per_block_over_batched"] = {k: round(b[k] / a[k], 3) for k in a if k != "top_ops"}
    if device.type == "cuda":
        res["fused_conv_relu"] = _fused(model, inputs[args.batch], args.repeats, device)
    res["niqe"] = _niqe(args.niqe_images, args.repeats, device)
    res["draw"] = _draws(args.envs, args.repeats)
    print(json.dumps(res, indent=1))


def _fused(model, inputs, repeats: int, device: torch.device) -> dict:
    out, ms = {}, {}
    for fused in (False, True):
        model.fused_conv_relu = fused

        def fwd():
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
                return model(*inputs).float()
        out[fused] = fwd()
        ms[fused] = _median_ms(fwd, repeats, device)
    model.fused_conv_relu = False
    return {"batch": inputs[0].shape[0], "unfused_ms": round(ms[False], 3), "fused_ms": round(ms[True], 3),
            "unfused_over_fused": round(ms[False] / ms[True], 3),
            "max_abs_diff": float((out[True] - out[False]).abs().max())}


def _niqe(n: int, repeats: int, device: torch.device) -> dict:
    import importlib

    from blindsr_gym.metrics import niqe

    niqe_module = importlib.import_module("blindsr_gym.metrics.niqe")  # the package's `niqe` is the function

    x = torch.rand(n, 3, 256, 256, generator=torch.Generator().manual_seed(0)).to(device)
    out: dict = {"images": n}
    values = {}
    for name, fused in (("fused", True), ("separate", False)):
        niqe_module.FUSED_FEATURES = fused
        try:
            values[name] = niqe(x)
            with _Count() as count:
                niqe(x)
            out[name] = {"ops": sum(count.ops.values()), "reads_of_device_values": count.ops["_local_scalar_dense"],
                         "ms": round(_median_ms(lambda: niqe(x), repeats, device), 3)}
        finally:
            niqe_module.FUSED_FEATURES = None
    out["separate_over_fused"] = {k: round(out["separate"][k] / out["fused"][k], 3) for k in ("ops", "ms")}
    out["same_scores"] = bool(torch.equal(values["fused"], values["separate"]))
    return out


def _draws(sizes: list[int], repeats: int) -> dict:
    import numpy as np

    from blindsr_gym.envs.core import EnvCore

    out = {}
    for family in ("isotropic", "anisotropic"):
        core = EnvCore(renderer="bicubic", device="cpu", kernel_family=family)
        for n in sizes:
            rngs = [np.random.default_rng(s) for s in range(n)]
            batched = _median_ms(lambda: core.draw_all(rngs), repeats, torch.device("cpu"))  # noqa: B023
            one_by_one = _median_ms(lambda: [core.draw(r) for r in rngs], repeats, torch.device("cpu"))  # noqa: B023
            out[f"{family}_{n}"] = {"draw_all_ms": round(batched, 3), "one_by_one_ms": round(one_by_one, 3),
                                    "one_by_one_over_draw_all": round(one_by_one / batched, 2)}
    return out


if __name__ == "__main__":
    main()
