"""What the adversarial weight does to the renders: crops of the built-in images (never trained or selected on),
degraded at sigma 1.3 (the middle of Table 3's widths) and rendered with the true kernel by AMNet (`amnet2_x4`,
the GANs' start), by `amgan2_x4` (L1 + 0.005 RealnessGAN) and by the GAN of the new run (L1 + 0.02 RealnessGAN);
each panel titled with the whole render's NIQE and PSNR-Y.

    python docs/experiments/2026-11-29_amgan_adversarial_weight_crops.py runs/amgan3_adv02/amnet_gan.safetensors \\
        docs/experiments/2026-11-29_amgan_adversarial_weight_crops

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
    new, prefix = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(2)
    models = {"amnet2_x4": load_renderer("amnet2_x4"), "amgan2_x4 (adv 0.005)": load_renderer("amgan2_x4"),
              "new GAN (adv 0.02)": load_renderer(new)}
    niqe = get_metric("niqe")
    src = builtin()
    k = isotropic_gaussian(SIGMA)
    rows, out = [], {"command": "python " + " ".join(sys.argv), "sigma": SIGMA, "new": new, "images": {}}
    for name in IMAGES:
        hr = centre_crop(to_tensor(src[src.names.index(name)]), 384)
        lr = degrade(hr, k, 4)
        panels = [("HR", hr)] + [(key, m(lr, m.codec.encode(k)).clamp(0, 1)) for key, m in models.items()]
        figs = {key: {"niqe": round(float(niqe(img)[0]), 3), "psnr_y": round(float(psnr(img, hr, crop_border=4)[0]), 2)}
                for key, img in panels[1:]}
        out["images"][name] = figs
        rows.append((name, panels, figs))
    fig, axes = plt.subplots(len(rows), len(models) + 1, figsize=(3 * (len(models) + 1), 3.2 * len(rows)))
    o = (384 - CROP) // 2
    for r, (name, panels, figs) in enumerate(rows):
        for c, (key, img) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img[0, :, o:o + CROP, o:o + CROP].permute(1, 2, 0).numpy().clip(0, 1), interpolation="nearest")
            f = figs.get(key)
            ax.set_title(f"{name}: HR" if f is None else f"{key}\nNIQE {f['niqe']:.2f}, PSNR-Y {f['psnr_y']:.2f} dB",
                         fontsize=8)
            ax.axis("off")
    fig.suptitle(f"true kernel, sigma {SIGMA}: {CROP}x{CROP} HR-pixel centre crops; NIQE and PSNR-Y of the whole "
                 "384x384 render (lower NIQE is better)", fontsize=9)
    fig.tight_layout()
    fig.savefig(prefix.with_suffix(".png"), dpi=100)
    out["mean"] = {key: {m: round(float(np.mean([out["images"][i][key][m] for i in IMAGES])), 3)
                         for m in ("niqe", "psnr_y")} for key in models}
    prefix.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["mean"], indent=1))


if __name__ == "__main__":
    main()
