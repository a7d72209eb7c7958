"""The built-in crops of tests/test_upscale.py (256x256 centre crops of the first three built-in images, blurred
with sigma 1.8 / 2.4 / 3.0, downsampled x4, 8-bit), upscaled with amnet2_x4 and with amnet_robust2_x4: the
PSNR-Y gain over bicubic (dB, 8-bit SR, crop 4) with KENet's kernel, with actor_psnr_x4's width and with the true
kernel, and the width each estimator reads; then, on the middle image, the isotropic codes around KENet's width.

    python docs/experiments/2026-11-28_amnet_robust2_builtin_upscale.py \
        docs/experiments/2026-11-28_amnet_robust2_builtin_upscale.json
"""

import json
import sys

import torch

from blindsr_gym.agents import load_actor
from blindsr_gym.agents.kenet import load_kenet
from blindsr_gym.data import builtin
from blindsr_gym.degradation import degrade, imresize
from blindsr_gym.kernels import isotropic_gaussian, isotropic_sigma
from blindsr_gym.metrics import psnr
from blindsr_gym.renderers import load_renderer
from blindsr_gym.utils import centre_crop, to_tensor, to_uint8

RENDERERS = ("amnet2_x4", "amnet_robust2_x4")
SIGMAS = (1.8, 2.4, 3.0)
SWEEP = (2.2, 2.4, 2.6, 2.74, 2.9, 3.1)


def q8(x: torch.Tensor) -> torch.Tensor:
    return to_tensor(to_uint8(x.clamp(0, 1))[0])


@torch.no_grad()
def main() -> int:
    torch.set_num_threads(2)
    src, kenet = builtin(), load_kenet("kenet_x4")
    out = {"command": "python docs/experiments/2026-11-28_amnet_robust2_builtin_upscale.py " + " ".join(sys.argv[1:]),
           "images": {}, "sweep": {}}
    for i, sigma in enumerate(SIGMAS):
        hr = centre_crop(to_tensor(src[i]), 256)
        lr = q8(degrade(hr, isotropic_gaussian(sigma), 4))
        bic = float(psnr(imresize(lr, 4.0).clamp(0, 1), hr, crop_border=4)[0])
        k = kenet(lr)
        row = {"sigma": sigma, "kenet_width": round(float(isotropic_sigma(k)[0]), 3)}
        for name in RENDERERS:
            g = load_renderer(name)
            actor = load_actor("actor_psnr_x4", codec=g.codec)
            row["actor_width"] = round(float(actor.sigma(lr)[0]), 3)
            codes = {"kenet": g.codec.encode(k), "actor": g.codec.action_to_code(actor(lr)),
                     "true": g.codec.encode(isotropic_gaussian(sigma)[None].float())}
            row[name] = {m: round(float(psnr(q8(g(lr, c)), hr, crop_border=4)[0]) - bic, 2) for m, c in codes.items()}
            if i == 1:  # the image whose KENet kernel renders worse with the robust renderer
                out["sweep"][name] = {
                    f"{w:g}": round(float(psnr(q8(g(lr, g.codec.encode(isotropic_gaussian(w)[None].float()))), hr,
                                               crop_border=4)[0]) - bic, 2) for w in SWEEP}
                out["sweep"][name]["kenet"] = row[name]["kenet"]
        out["images"][src.names[i]] = row
    text = json.dumps(out, indent=1)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
