"""Where a blind method loses against the true kernel, per image: for every HR image of a folder and every
Gaussian8 kernel, PSNR-Y of the renderer with the true kernel's code (`gt`) minus with the actor's action
(`amnet-rl`), through `blindsr_gym.evaluate.evaluate` (the loop of Table 2). Prints JSON.

    python scripts/per_image_gap.py --data ../shared/data/test/Set14 [--actor actor_psnr_x4] [--renderer amnet_x4]

A mean gap carried by one image (a collapse) calls for a different remedy than a gap spread over all of them.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    from blindsr_gym.evaluate import evaluate, load_datasets, make_method, parse_kernels
    from blindsr_gym.metrics import get_metric

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of HR images")
    p.add_argument("--actor", default="actor_psnr_x4")
    p.add_argument("--renderer", default="amnet_x4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [make_method(m, renderer=args.renderer, actor=args.actor, device=args.device) for m in ("gt", "amnet-rl")]
    psnr = get_metric("psnr")
    scores: dict[tuple[str, str, str], float] = {}

    def collect(method, dataset, image, kernel, lr, sr, hr):  # the same PSNR-Y call evaluate makes
        scores[(method, image, kernel)] = float(psnr.fn(sr, hr, crop_border=4).reshape(-1)[0])

    kernels = parse_kernels("gaussian8")
    records = evaluate(load_datasets([args.data]), kernels, methods, metrics=("psnr",), device=args.device,
                       progress=False,
                       on_result=collect)
    rows = {}
    for image in dict.fromkeys(i for _, i, _ in scores):
        gaps = [scores[("gt", image, k)] - scores[("amnet-rl", image, k)] for k, _ in kernels]
        rows[image] = {"mean_gap_db": round(float(np.mean(gaps)), 3), "gap_db_by_sigma": [round(g, 3) for g in gaps]}
    table = {r["method"]: np.mean([x["psnr"] for x in records if x["method"] == r["method"]]) for r in records}
    out = {"command": "python scripts/per_image_gap.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "kernels": [k for k, _ in kernels], "mean_gap_db": round(float(table["gt"] - table["amnet-rl"]), 3),
           "images": rows}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
