"""The evaluation harness: SR methods on folders of HR images, degraded with fixed kernels.

Every HR image is mod-cropped to the scale, degraded with each kernel of the setting (Eq. 1, no
noise, 8-bit LR, as DAN/IKC/the paper), restored by each method, and scored; fidelity metrics on
the MATLAB Y channel with ``crop_border = scale``. Records hold per-(method, dataset, kernel)
means; ``summary`` adds the mean over the kernels of a setting (the paper's Gaussian8 columns).

Methods: ``bicubic`` (MATLAB bicubic of the LR) and ``gt`` (the renderer with the true kernel's
code, the non-blind upper bound). Blind methods register themselves with :func:`register_method`.

    blindsr-gym evaluate --data ../shared/data/test/Set5 --kernels gaussian8 --methods bicubic,gt \\
        --renderer amnet_x4 --metrics psnr,ssim --json out.json --markdown out.md
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import ImageFolder, ImageSource, builtin
from .degradation import degrade, imresize
from .kernels import gaussian8_sigmas, isotropic_gaussian
from .metrics import get_metric
from .utils import to_tensor

__all__ = ["parse_kernels", "register_method", "make_method", "evaluate", "summarize", "to_markdown",
           "load_datasets", "METHODS"]


# ------------------------------------------------------------------------------------------------
# kernel settings
# ------------------------------------------------------------------------------------------------


def parse_kernels(spec: str, scale: int = 4, size: int = 21) -> list[tuple[str, torch.Tensor]]:
    """``"gaussian8"`` (sigma = linspace(1.8, 3.2, 8) at x4, DAN/IKC) or ``"sigma:0.2,1.3,2.6"``
    (isotropic, 21x21) to a list of ``(label, kernel)``."""
    spec = spec.strip()
    if spec == "gaussian8":
        sigmas = gaussian8_sigmas(scale)
    elif spec.startswith("sigma:"):
        try:
            sigmas = [float(v) for v in spec[len("sigma:"):].split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"bad kernel setting {spec!r}: expected sigma:0.2,1.3,2.6") from None
        if not sigmas or any(not (math.isfinite(s) and s > 0) for s in sigmas):
            raise ValueError(f"bad kernel setting {spec!r}: sigmas must be positive numbers")
    else:
        raise ValueError(f"unknown kernel setting {spec!r}; use 'gaussian8' or 'sigma:0.2,1.3,2.6'")
    return [(f"sigma={float(s):.2f}", isotropic_gaussian(float(s), size)) for s in sigmas]


# ------------------------------------------------------------------------------------------------
# methods
# ------------------------------------------------------------------------------------------------


@dataclass
class Method:
    """``fn(lr, kernel) -> sr``: LR float ``[1, 3, h, w]`` in [0, 1], the true ``[k, k]`` kernel
    (only non-blind methods may look at it), SR float in [0, 1]."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    blind: bool = True


METHODS: dict[str, Callable[..., Method]] = {}


def register_method(name: str, factory: Callable[..., Method]) -> None:
    """``factory(scale=..., device=..., renderer=...) -> Method``; later registrations replace earlier ones."""
    METHODS[name] = factory


def _bicubic(scale: int = 4, **_) -> Method:
    return Method("bicubic", lambda lr, k: imresize(lr, float(scale)).clamp(0, 1), blind=True)


def _gt(scale: int = 4, device="cpu", renderer="amnet_x4", **_) -> Method:
    from .renderers import load_renderer

    model = renderer if isinstance(renderer, torch.nn.Module) else load_renderer(renderer, device=device)
    if model.scale != scale:
        raise ValueError(f"renderer is x{model.scale}, evaluation is x{scale}")

    @torch.no_grad()
    def fn(lr, k):
        code = model.codec.encode(k[None].to(lr.device))
        return model(lr, code)

    return Method("gt", fn, blind=False)


def _dan(scale: int = 4, device="cpu", dan="dan_x4", **_) -> Method:
    from .renderers import load_renderer

    model = dan if isinstance(dan, torch.nn.Module) else load_renderer(dan, device=device, arch="dan")
    if model.scale != scale:
        raise ValueError(f"DAN checkpoint is x{model.scale}, evaluation is x{scale}")
    return Method("dan", lambda lr, k: model.super_resolve(lr), blind=True)


register_method("bicubic", _bicubic)
register_method("gt", _gt)
register_method("dan", _dan)


def make_method(name: str, **kwargs) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name](**kwargs)


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


def load_datasets(specs: Sequence[str], scale: int = 4) -> dict[str, ImageSource]:
    """``"builtin"`` or folders of HR images, named by the folder's name."""
    out: dict[str, ImageSource] = {}
    for spec in specs:
        src = builtin(mod=scale) if spec == "builtin" else ImageFolder(spec, mod=scale)
        name = "builtin" if spec == "builtin" else Path(spec).expanduser().resolve().name
        if name in out:
            raise ValueError(f"two datasets are called {name!r}; rename one folder")
        out[name] = src
    return out


# ------------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(datasets: dict[str, ImageSource], kernels: list[tuple[str, torch.Tensor]],
             methods: Sequence[Method], metrics: Sequence[str] = ("psnr", "ssim"), scale: int = 4,
             device: str | torch.device = "cpu", max_images: int | None = None, progress: bool = True,
             on_result: Callable | None = None) -> list[dict]:
    """One record per (method, dataset, kernel): ``{"method", "dataset", "kernel", "images", <metric>: mean}``.

    ``on_result(method, dataset, image_name, kernel_label, lr, sr, hr)`` sees every output (figures).
    """
    device = torch.device(device)
    mets = [get_metric(m) for m in metrics]
    crop = {"psnr", "ssim"}
    sums: dict[tuple, dict[str, list[float]]] = {}
    total = sum(min(len(s), max_images or len(s)) for s in datasets.values()) * len(kernels)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="evaluate", unit="img")
    for dname, source in datasets.items():
        n = min(len(source), max_images or len(source))
        for i in range(n):
            hr = to_tensor(source[i]).to(device)
            for klabel, k in kernels:
                lr = degrade(hr, k.to(device), scale)
                for m in methods:
                    sr = m.fn(lr, k.to(device))
                    if sr.shape != hr.shape:
                        raise RuntimeError(f"method {m.name} returned {tuple(sr.shape)} for HR {tuple(hr.shape)}")
                    rec = sums.setdefault((m.name, dname, klabel), {})
                    for met in mets:
                        if met.name in crop:
                            v = met.fn(sr, hr, crop_border=scale)
                        else:
                            v = met(sr, hr) if met.needs_reference else met(sr)
                        rec.setdefault(met.name, []).append(float(v.reshape(-1)[0]))
                    if on_result is not None:
                        on_result(m.name, dname, source.names[i], klabel, lr, sr, hr)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    records = []
    for (mname, dname, klabel), vals in sums.items():
        rec = {"method": mname, "dataset": dname, "kernel": klabel, "images": len(next(iter(vals.values())))}
        rec.update({k: float(np.nanmean(v)) for k, v in vals.items()})
        records.append(rec)
    return records


def summarize(records: list[dict], metrics: Sequence[str]) -> list[dict]:
    """Mean over kernels per (method, dataset): the paper's Gaussian8 figure."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["dataset"]), []).append(r)
    return [{"method": m, "dataset": d, "kernel": "mean", "kernels": len(rs),
             **{k: float(np.mean([r[k] for r in rs])) for k in metrics}} for (m, d), rs in groups.items()]


def to_markdown(records: list[dict], metrics: Sequence[str], by_kernel: bool = False) -> str:
    """Methods as rows, datasets as columns (the paper's Table 2 layout); cells ``psnr/ssim``.

    ``by_kernel=True``: one column per (dataset, kernel) instead of the mean over kernels.
    """
    rows = records if by_kernel else summarize(records, metrics)
    cols = []
    for r in rows:
        c = (r["dataset"], r["kernel"]) if by_kernel else (r["dataset"],)
        if c not in cols:
            cols.append(c)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], (r["dataset"], r["kernel"]) if by_kernel else (r["dataset"],)): r for r in rows}
    fmt = {"psnr": "{:.2f}", "ssim": "{:.4f}", "niqe": "{:.3f}"}
    head = "| method | " + " | ".join(" ".join(c) for c in cols) + " |"
    lines = [f"metrics: {' / '.join(metrics)}", "", head, "|" + "---|" * (len(cols) + 1)]
    for m in methods:
        vals = []
        for c in cols:
            r = cell.get((m, c))
            vals.append("-" if r is None else " / ".join(fmt.get(k, "{:.4f}").format(r[k]) for k in metrics))
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Table 6: parameters, MACs and latency at a 64x64 LR input
# ------------------------------------------------------------------------------------------------


def _cost_models() -> dict[str, tuple[list[torch.nn.Module], Callable]]:
    """name -> (modules whose parameters count, ``fn(lr)`` running the method once), random weights."""
    from .agents.networks import Actor
    from .renderers import build_renderer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        actor, amnet, amnet_l, dan = Actor(), build_renderer("amnet"), build_renderer("amnet_l"), build_renderer("dan")
    for m in (actor, amnet, amnet_l, dan):
        m.eval()

    def rl(renderer):
        return lambda lr: renderer(lr, renderer.codec.action_to_code(actor(lr)))

    return {"AMNet-RL": ([actor, amnet], rl(amnet)), "AMNet_L-RL": ([actor, amnet_l], rl(amnet_l)),
            "DAN (4 loops)": ([dan], dan.super_resolve)}


@torch.no_grad()
def cost_table(size: int = 64, repeats: int = 5, device: str | torch.device = "cpu") -> list[dict]:
    """Parameters, MACs (``torch.utils.flop_counter`` / 2) and median latency per 1x3xsize x size image."""
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device(device)
    rows = []
    for name, (mods, fn) in _cost_models().items():
        for m in mods:
            m.to(device)
        lr = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        with FlopCounterMode(display=False) as fc:
            fn(lr)
        fn(lr)  # warm-up
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn(lr)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        rows.append({"method": name, "params": int(sum(p.numel() for m in mods for p in m.parameters())),
                     "macs_G": fc.get_total_flops() / 2 / 1e9, "latency_s": float(np.median(times)),
                     "device": str(device)})
    base = rows[0]
    for r in rows:
        r["macs_vs_amnet_rl"] = r["macs_G"] / base["macs_G"]
        r["latency_vs_amnet_rl"] = r["latency_s"] / base["latency_s"]
    return rows


def run_cli(args) -> int:
    from .utils import resolve_device

    t0 = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cost:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        rows = [r for d in devices for r in cost_table(repeats=args.cost_repeats, device=d)]
        doc = {"command": args.command_line, "threads": torch.get_num_threads(), "input": "1x3x64x64", "rows": rows}
        lines = ["| method | params | MACs (G) | latency (s) | device | MACs / AMNet-RL | latency / AMNet-RL |",
                 "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['params']:,} | {r['macs_G']:.1f} | {r['latency_s']:.3f} | {r['device']} | "
                  f"{r['macs_vs_amnet_rl']:.1f}x | {r['latency_vs_amnet_rl']:.1f}x |" for r in rows]
        if args.json:
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        if args.markdown:
            Path(args.markdown).write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    device = resolve_device(args.device)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for m in metrics:
        get_metric(m)  # fail before the long loop
    datasets = load_datasets(args.data, args.scale)
    kernels = parse_kernels(args.kernels, args.scale)
    methods = [make_method(m.strip(), scale=args.scale, device=device, renderer=args.renderer, dan=args.dan)
               for m in args.methods.split(",") if m.strip()]
    records = evaluate(datasets, kernels, methods, metrics, args.scale, device, args.max_images,
                       progress=not args.no_progress)
    result = {"command": args.command_line, "kernels": args.kernels, "scale": args.scale,
              "renderer": str(args.renderer), "device": str(device),
              "wall_s": round(time.perf_counter() - t0, 1), "records": records, "summary": summarize(records, metrics)}
    md = to_markdown(records, metrics, by_kernel=args.by_kernel)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(md)
    if args.card_key:
        _update_card(args.renderer, args.card_key, result)
    print(md)
    return 0


def _update_card(renderer: str, key: str, result: dict) -> None:
    """Store ``result`` (summary, records, command) in the renderer's model card under evaluation[key]."""
    from .renderers import _resolve

    card_path = _resolve(renderer).with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    card.setdefault("evaluation", {})[key] = {k: result[k] for k in ("command", "kernels", "device", "wall_s",
                                                                      "summary", "records")}
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def add_arguments(p) -> None:
    p.add_argument("--data", nargs="+", default=["builtin"], help="HR image folders, or 'builtin'")
    p.add_argument("--kernels", default="gaussian8", help="'gaussian8' or 'sigma:0.2,1.3,2.6'")
    p.add_argument("--methods", default="bicubic,gt", help=f"comma-separated; registered: {', '.join(sorted(METHODS))}")
    p.add_argument("--renderer", default="amnet_x4", help="renderer for 'gt' (shipped name or checkpoint path)")
    p.add_argument("--dan", default="dan_x4", help="DAN checkpoint for 'dan' (shipped name or path)")
    p.add_argument("--metrics", default="psnr,ssim", help="comma-separated metric names")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    p.add_argument("--max-images", type=int, default=None, help="first N images of each dataset")
    p.add_argument("--by-kernel", action="store_true", help="markdown: one column per kernel")
    p.add_argument("--json", default=None, help="write records here")
    p.add_argument("--markdown", default=None, help="write the table here")
    p.add_argument("--card-key", default=None,
                   help="also store the results in --renderer's model card (.json) under evaluation.<KEY>")
    p.add_argument("--cost", action="store_true",
                   help="Table 6 instead: parameters, MACs and latency at 64x64 (random weights; CPU, and GPU if any)")
    p.add_argument("--cost-repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
