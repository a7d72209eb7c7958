"""How steep a renderer is in the kernel width: PSNR when the code is that of sigma*(1+d) instead of
the true sigma (isotropic kernels), averaged over a folder of HR images.

    python scripts/sigma_sensitivity.py --data ../shared/data/test/Set5 --renderer amnet_x4
    python scripts/sigma_sensitivity.py --data ../shared/data/test/Set5 --errors 0 0.05 --components 0:5

``--constants S ...`` instead renders every image with the code of one fixed width S whatever the true
sigma (a policy that ignores the image: the floor a kernel estimator has to beat), e.g.
``--sigmas 1.8 2.0 2.2 2.4 2.6 2.8 3.0 3.2 --constants 2.0 2.2 2.4`` for Gaussian8.

``--components A:B`` takes only those code components from sigma*(1+d) and keeps the true ones elsewhere.
``--centre-components A:B`` then also sets those *actions* to 0 (the centre of the codec's box): how
much the renderer reads components that carry almost none of the kernel.

Prints JSON: the command, and the mean PSNR-Y (border = scale) per relative error d.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from blindsr_gym.data import ImageFolder
from blindsr_gym.degradation import degrade
from blindsr_gym.kernels import isotropic_gaussian
from blindsr_gym.metrics import psnr
from blindsr_gym.renderers import load_renderer
from blindsr_gym.utils import to_tensor


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of HR images")
    p.add_argument("--renderer", default="amnet_x4")
    p.add_argument("--sigmas", type=float, nargs="+", default=[1.8, 2.4, 3.0])
    p.add_argument("--errors", type=float, nargs="+", default=[-0.1, -0.05, -0.02, 0, 0.02, 0.05, 0.1])
    p.add_argument("--components", default=None, help="A:B: perturb only code components A..B-1")
    p.add_argument("--centre-components", default=None, help="A:B: set these actions to 0 (box centre)")
    p.add_argument("--constants", type=float, nargs="+", default=None,
                   help="render with the code of each of these fixed widths instead of sigma*(1+d)")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.constants and (a.components or a.centre_components):
        p.error("--constants replaces the whole code; it does not combine with --components/--centre-components")
    lo, hi = (int(x) for x in a.components.split(":")) if a.components else (0, None)
    c_lo, c_hi = (int(x) for x in a.centre_components.split(":")) if a.centre_components else (0, 0)
    if a.threads:
        torch.set_num_threads(a.threads)
    model = load_renderer(a.renderer)
    src = ImageFolder(a.data, mod=model.scale)
    code = lambda s: model.codec.encode(torch.as_tensor(isotropic_gaussian(s)).float()[None])  # noqa: E731
    keys = a.constants if a.constants else a.errors
    scores = {d: [] for d in keys}
    with torch.no_grad():
        for i in range(len(src)):
            hr = to_tensor(src[i])
            for s in a.sigmas:
                lr, true = degrade(hr, isotropic_gaussian(s), model.scale), code(s)
                for d in keys:
                    if a.constants:
                        scores[d].append(float(psnr(model(lr, code(d)), hr, crop_border=model.scale).reshape(-1)[0]))
                        continue
                    c = true.clone()
                    c[:, lo:hi] = code(s * (1 + d))[:, lo:hi]
                    if c_hi > c_lo:
                        act = model.codec.code_to_action(c)
                        act[:, c_lo:c_hi] = 0
                        c = model.codec.action_to_code(act)
                    sr = model(lr, c)
                    scores[d].append(float(psnr(sr, hr, crop_border=model.scale).reshape(-1)[0]))
    out = {"command": "python scripts/sigma_sensitivity.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "renderer": a.renderer, "sigmas": a.sigmas, "components": a.components or "all",
           "centred_actions": a.centre_components,
           "constants": a.constants}
    if a.constants:
        out["psnr_by_constant_sigma"] = {f"{d:.2f}": round(sum(v) / len(v), 3) for d, v in scores.items()}
    else:
        out["psnr_by_relative_sigma_error"] = {f"{d:+.2f}": round(sum(v) / len(v), 3) for d, v in scores.items()}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
