"""Where a blind method loses against the true kernel, per image: for every HR image of a folder and every
Gaussian8 kernel, PSNR-Y of the renderer with the true kernel's code minus with the actor's action. Prints JSON.

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
    from blindsr_gym.agents import load_actor
    from blindsr_gym.data import ImageFolder
    from blindsr_gym.degradation import degrade
    from blindsr_gym.kernels import gaussian8
    from blindsr_gym.metrics import psnr
    from blindsr_gym.renderers import load_renderer
    from blindsr_gym.utils import to_tensor

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of HR images")
    p.add_argument("--actor", default="actor_psnr_x4")
    p.add_argument("--renderer", default="amnet_x4")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    renderer = load_renderer(args.renderer)
    actor = load_actor(args.actor, codec=renderer.codec)
    images = ImageFolder(args.data, mod=4)
    kernels = gaussian8()
    rows = {}
    for i in range(len(images)):
        hr = to_tensor(images[i])
        gaps = []
        for k in kernels:
            lr = degrade(hr, k, 4)
            with torch.no_grad():
                true_sr = renderer(lr, renderer.codec.encode(k))
                blind_sr = renderer(lr, renderer.codec.action_to_code(actor(lr)))
            gaps.append(float(psnr(true_sr, hr, crop_border=4)[0] - psnr(blind_sr, hr, crop_border=4)[0]))
        rows[images.names[i]] = {"mean_gap_db": round(float(np.mean(gaps)), 3),
                                "gap_db_by_sigma": [round(g, 3) for g in gaps]}
    means = [r["mean_gap_db"] for r in rows.values()]
    out = {"command": "python scripts/per_image_gap.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "sigmas": "gaussian8 (1.8 .. 3.2)", "mean_gap_db": round(float(np.mean(means)), 3), "images": rows}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
