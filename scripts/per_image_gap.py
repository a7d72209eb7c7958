"""Where a blind method loses against the true kernel, per image: for every HR image of a folder and every
Gaussian8 kernel, PSNR-Y of the renderer with the true kernel's code (`gt`) minus with the actor's action
(`amnet-rl`), through `blindsr_gym.evaluate.evaluate` (the loop of Table 2). Prints JSON.

    python scripts/per_image_gap.py --data ../shared/data/test/Set14 [--actor actor_psnr_x4 ...] [--renderer amnet_x4]
    python scripts/per_image_gap.py --data ../shared/data/test/Set14 --hedge 1 0.95 0.9 0.85 0.8
    python scripts/per_image_gap.py --data ../shared/data/test/Set14 --ensemble

Several ``--actor`` share the true kernel's renders. ``--hedge M ...`` (sigma-head actors) also renders with
each actor's width estimate times M: a diagnostic of how much a uniform bias of the estimate buys, not a
method (M is chosen while looking at the test images). ``--ensemble`` also renders with the mean of a
sigma-head actor's width estimates over the 8 flips and rotations of the LR image (test-time self-ensemble,
``blindsr_gym.agents.SelfEnsemble``; ``evaluate --methods amnet-rl-ens``).

A mean gap carried by one image (a collapse) calls for a different remedy than a gap spread over all of them.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


class Hedged(torch.nn.Module):
    """A sigma-head actor whose width estimate is multiplied by ``m`` before it becomes the action."""

    def __init__(self, actor: torch.nn.Module, m: float):
        super().__init__()
        if getattr(actor, "head_kind", None) != "sigma":
            raise ValueError("--hedge needs a sigma-head actor (its width estimate is what gets scaled)")
        self.actor, self.m = actor, m

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.actor.sigma_to_action(self.actor.sigma(lr) * self.m)


def main(argv: list[str] | None = None) -> int:
    from blindsr_gym.agents import SelfEnsemble, load_actor
    from blindsr_gym.evaluate import evaluate, load_datasets, make_method, parse_kernels
    from blindsr_gym.metrics import get_metric

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of HR images")
    p.add_argument("--actor", nargs="+", default=["actor_psnr_x4"])
    p.add_argument("--hedge", type=float, nargs="+", default=None, help="width multipliers M (diagnostic)")
    p.add_argument("--ensemble", action="store_true", help="also the 8-view self-ensemble of each actor")
    p.add_argument("--renderer", default="amnet_x4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.hedge and not all(m > 0 for m in args.hedge):
        p.error(f"--hedge multipliers must be > 0, got {args.hedge}")
    torch.set_num_threads(args.threads)
    methods = [make_method("gt", renderer=args.renderer, device=args.device)]
    for name in args.actor:
        loaded = load_actor(name, device=args.device) if args.hedge or args.ensemble else None
        for m in args.hedge or [None]:
            actor = name if m is None else Hedged(loaded, m)
            method = make_method("amnet-rl", renderer=args.renderer, actor=actor, device=args.device)
            method.name = name if m is None else f"{name} x{m:g}"
            methods.append(method)
        if args.ensemble:
            method = make_method("amnet-rl", renderer=args.renderer, actor=SelfEnsemble(loaded), device=args.device)
            method.name = f"{name} ensemble"
            methods.append(method)
    psnr = get_metric("psnr")
    scores: dict[tuple[str, str, str], float] = {}

    def collect(method, dataset, image, kernel, lr, sr, hr):  # the same PSNR-Y call evaluate makes
        scores[(method, image, kernel)] = float(psnr.fn(sr, hr, crop_border=4).reshape(-1)[0])

    kernels = parse_kernels("gaussian8")
    records = evaluate(load_datasets([args.data]), kernels, methods, metrics=("psnr",), device=args.device,
                       progress=False, on_result=collect)
    table = {m.name: np.mean([x["psnr"] for x in records if x["method"] == m.name]) for m in methods}
    out = {"command": "python scripts/per_image_gap.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "kernels": [k for k, _ in kernels], "gt_psnr": round(float(table["gt"]), 3), "methods": {}}
    images = list(dict.fromkeys(i for _, i, _ in scores))
    for m in methods[1:]:
        rows = {}
        for image in images:
            gaps = [scores[("gt", image, k)] - scores[(m.name, image, k)] for k, _ in kernels]
            rows[image] = {"mean_gap_db": round(float(np.mean(gaps)), 3),
                           "gap_db_by_sigma": [round(g, 3) for g in gaps]}
        out["methods"][m.name] = {"mean_gap_db": round(float(table["gt"] - table[m.name]), 3), "images": rows}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
