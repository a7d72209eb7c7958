"""What a lower NIQE looks like: crops of the built-in images (never trained or selected on), degraded at
sigma 1.3 (the middle of Table 3's widths), rendered by amgan2_x4 with the true kernel and with the width
each NIQE actor reads (actor_niqe3_x4, trained against amgan_x4; actor_niqe4_x4, trained against amgan2_x4),
each panel titled with the whole render's NIQE, PSNR-Y and the width used.

    python docs/experiments/2026-11-28_niqe_actors_amgan2_crops.py docs/experiments/2026-11-28_niqe_actors_amgan2_crops

writes PREFIX.json (the figures) and PREFIX.png.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from blindsr_gym.agents import load_actor  # noqa: E402
from blindsr_gym.data import builtin  # noqa: E402
from blindsr_gym.degradation import degrade  # noqa: E402
from blindsr_gym.kernels import isotropic_gaussian  # noqa: E402
from blindsr_gym.metrics import get_metric, psnr  # noqa: E402
from blindsr_gym.renderers import load_renderer  # noqa: E402
from blindsr_gym.utils import centre_crop, to_tensor  # noqa: E402

SIGMA = 1.3
IMAGES = ("astronaut", "coffee", "motorcycle")
CROP = 96  # HR pixels shown per image, from the centre of the 384x384 HR crop


@torch.no_grad()
def main() -> None:
    prefix = Path(sys.argv[1])
    torch.set_num_threads(2)
    gan = load_renderer("amgan2_x4")
    actors = {n: load_actor(n, codec=gan.codec) for n in ("actor_niqe3_x4", "actor_niqe4_x4")}
    niqe = get_metric("niqe")
    src = builtin()
    k = isotropic_gaussian(SIGMA)
    rows, out = [], {"command": "python " + " ".join(sys.argv), "sigma": SIGMA, "renderer": "amgan2_x4",
                     "images": {}}
    for name in IMAGES:
        hr = centre_crop(to_tensor(src[src.names.index(name)]), 384)
        lr = degrade(hr, k, 4)
        panels = [("HR", hr, None), ("true kernel", gan(lr, gan.codec.encode(k)).clamp(0, 1), SIGMA)]
        for n, a in actors.items():
            panels.append((n, gan(lr, gan.codec.action_to_code(a(lr))).clamp(0, 1), float(a.sigma(lr)[0])))
        figs = {key: {"niqe": round(float(niqe(img)[0]), 3),
                      "psnr_y": round(float(psnr(img, hr, crop_border=4)[0]), 2), "sigma": round(w, 3)}
                for key, img, w in panels[1:]}
        out["images"][name] = figs
        rows.append((name, panels, figs))
    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3.2 * len(rows)))
    o = (384 - CROP) // 2
    for r, (name, panels, figs) in enumerate(rows):
        for c, (key, img, _) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img[0, :, o:o + CROP, o:o + CROP].permute(1, 2, 0).numpy().clip(0, 1), interpolation="nearest")
            f = figs.get(key)
            title = f"{name}: HR" if f is None else \
                f"{key}, sigma {f['sigma']:.2f}\nNIQE {f['niqe']:.2f}, PSNR-Y {f['psnr_y']:.2f} dB"
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.suptitle(f"amgan2_x4, true sigma {SIGMA}: {CROP}x{CROP} HR-pixel centre crops; NIQE and PSNR-Y of the "
                 "whole 384x384 render (lower NIQE is better)", fontsize=9)
    fig.tight_layout()
    fig.savefig(prefix.with_suffix(".png"), dpi=100)
    out["mean"] = {key: {m: round(float(np.mean([out["images"][i][key][m] for i in IMAGES])), 3)
                         for m in ("niqe", "psnr_y", "sigma")} for key in out["images"][IMAGES[0]]}
    prefix.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
