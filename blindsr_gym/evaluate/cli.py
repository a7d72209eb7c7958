"""``blindsr-gym evaluate``: the command line over the harness."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from blindsr_gym.errors import InputError

from ..agents import DEFAULT_NIQE_ACTOR, DEFAULT_PSNR_ACTOR
from ..fileio import check_writable, write_text
from ..metrics import get_metric
from .cards import _update_card
from .cost import cost_table
from .harness import evaluate, load_datasets, parse_kernels
from .methods import METHODS, make_method
from .report import FigurePanels, summarize, to_markdown


def run_cli(args) -> int:
    from ..utils import resolve_device

    t0 = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cost:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        rows = [r for d in devices for r in cost_table(repeats=args.cost_repeats, device=d)]
        doc = {"command": args.command_line, "threads": torch.get_num_threads(), "input": "1x3x64x64", "rows": rows}
        def graph(r):  # CUDA only: the latency replayed from a CUDA graph
            if "latency_graph_s" in r:
                return f"{r['latency_graph_s'] * 1e3:.2f} ms"
            return "not capturable" if "graph_error" in r else "–"

        lines = ["| method | params | MACs (G) | latency (s) | CUDA graph | device | MACs / AMNet-RL | "
                 "latency / AMNet-RL |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['params']:,} | {r['macs_G']:.1f} | {r['latency_s']:.3f} | {graph(r)} | "
                  f"{r['device']} | {r['macs_vs_amnet_rl']:.1f}x | {r['latency_vs_amnet_rl']:.1f}x |" for r in rows]
        if args.json:
            write_text(args.json, json.dumps(doc, indent=2) + "\n")
        if args.markdown:
            write_text(args.markdown, "\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    device = resolve_device(args.device)
    for target in (args.json, args.markdown, args.log):  # fail now, not after the evaluation
        if target:
            check_writable(Path(target).expanduser().parent)
    if args.figures:
        check_writable(args.figures, "--figures folder")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for m in metrics:
        get_metric(m)  # fail before the long loop
    datasets = load_datasets(args.data, args.scale)
    kernels = parse_kernels(args.kernels, args.scale)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    for name in names:
        if name not in METHODS:
            raise InputError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    methods = [make_method(name, scale=args.scale, device=device, renderer=args.renderer, dan=args.dan,
                           gan_renderer=args.gan_renderer, actor=args.actor, gan_actor=args.gan_actor,
                           kenet=args.kenet, fixed_sigma=args.fixed_sigma) for name in names]
    panels = FigurePanels(args.figures, crop=args.figure_crop) if args.figures else None
    if args.resume and not args.log:
        raise InputError("--resume continues a --log; name it")
    seconds: dict = {}
    records = evaluate(datasets, kernels, methods, metrics, args.scale, device, args.max_images,
                       progress=not args.no_progress, on_result=panels, log=args.log, resume=args.resume,
                       seconds=seconds)
    result = {"command": args.command_line, "kernels": args.kernels, "scale": args.scale,
              "renderer": str(args.renderer), "device": str(device),
              "wall_s": round(time.perf_counter() - t0, 1), "method_s": seconds, "records": records,
              "summary": summarize(records, metrics)}
    if args.log:
        result["log"] = str(args.log)
    md = to_markdown(records, metrics, by_kernel=args.by_kernel)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.json, json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.markdown, md)
    if panels is not None:
        result["figures"] = [str(p) for p in panels.write()]
    if args.card_key:
        cards = sorted({p for m in methods for p in m.checkpoints})
        if not cards:
            raise InputError("--card-key: none of the methods evaluated has a checkpoint whose card could hold it")
        for path in cards:
            _update_card(path, args.card_key, result)
    print(md)
    return 0


def add_arguments(p) -> None:
    p.add_argument("--data", nargs="+", default=["builtin"], help="HR image folders, or 'builtin'")
    p.add_argument("--kernels", default="gaussian8", help="'gaussian8' or 'sigma:0.2,1.3,2.6'")
    p.add_argument("--methods", default="bicubic,gt", help=f"comma-separated; registered: {', '.join(sorted(METHODS))}")
    p.add_argument("--renderer", default="amnet_x4", help="renderer for 'gt' (shipped name or checkpoint path)")
    p.add_argument("--dan", default="dan_x4", help="DAN checkpoint for 'dan' (shipped name or path)")
    p.add_argument("--gan-renderer", default="amgan_x4", help="renderer for 'amgan-gt' and 'amgan-rl'")
    p.add_argument("--actor", default=DEFAULT_PSNR_ACTOR, help="actor for 'amnet-rl' (shipped name or path)")
    p.add_argument("--gan-actor", default=DEFAULT_NIQE_ACTOR, help="actor for 'amgan-rl' (shipped name or path)")
    p.add_argument("--kenet", default="kenet_x4", help="KENet for 'kenet' (shipped name or path)")
    p.add_argument("--fixed-sigma", type=float, default=2.2,
                   help="'fixed': the width of the one isotropic kernel used for every image")
    p.add_argument("--figures", default=None, help="folder for visual comparison panels (one per dataset and kernel; "
                   "with --resume only of the images computed in this run)")
    p.add_argument("--log", default=None, help="per-image results as JSON lines, written as they are computed")
    p.add_argument("--resume", action="store_true",
                   help="continue the --log of an evaluation that stopped: its entries are not recomputed "
                        "(a missing log starts one); refused if scale, metrics, kernels or a method's weights differ")
    p.add_argument("--figure-crop", type=int, default=128, help="HR crop side of the panels")
    p.add_argument("--metrics", default="psnr,ssim", help="comma-separated metric names")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4), help="upscaling factor")
    p.add_argument("--max-images", type=int, default=None, help="first N images of each dataset")
    p.add_argument("--by-kernel", action="store_true", help="markdown: one column per kernel")
    p.add_argument("--json", default=None, help="write records here")
    p.add_argument("--markdown", default=None, help="write the table here")
    p.add_argument("--card-key", default=None,
                   help="also store the results in the model card (.json) of each evaluated method's checkpoint "
                        "(gt: --renderer, kenet: --kenet, amnet-rl: --actor, ...) under evaluation.<KEY>")
    p.add_argument("--cost", action="store_true",
                   help="Table 6 instead: parameters, MACs and latency at 64x64 (random weights; CPU, and GPU if "
                        "any, there also replayed from a CUDA graph)")
    p.add_argument("--cost-repeats", type=int, default=5, help="--cost: timed runs per method (median)")
    p.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
