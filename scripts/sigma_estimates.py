"""Which kernel width an estimator reads from each image: for every HR image of a folder and every
Gaussian8 sigma, degrade, estimate the kernel (an actor through the codec, or KENet), and report the
sigma of the nearest isotropic Gaussian (least squares over a grid of sigmas).

    python scripts/sigma_estimates.py --estimator kenet_x4 --data ../shared/data/test/Set5
    python scripts/sigma_estimates.py --estimator runs/actor_code/actor.safetensors --data ../shared/data/test/Set5

Prints JSON: the command, the mean and mean absolute relative error of sigma, the fraction within
AMNet's tolerance (-5% .. +2%, see docs/experiments/2026-11-22_kernel_precision.md), and the estimated
sigma per image and true sigma.
An estimator whose rows move with the image more than with sigma reads content, not blur.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from blindsr_gym.data import ImageFolder
from blindsr_gym.degradation import degrade
from blindsr_gym.kernels import KernelCodec, gaussian8_sigmas, isotropic_gaussian
from blindsr_gym.utils import to_tensor


def nearest_sigma(kernels: torch.Tensor, grid: np.ndarray, bank: torch.Tensor) -> np.ndarray:
    """The grid sigma whose isotropic Gaussian is nearest (L2) to each kernel ``[n, l, l]``."""
    d = (bank[None] - kernels.reshape(len(kernels), 1, -1).float()).square().sum(-1)
    return grid[d.argmin(1).numpy()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--estimator", required=True, help="an actor or a KENet checkpoint (name or path)")
    p.add_argument("--kind", choices=["auto", "actor", "kenet"], default="auto",
                   help="auto: KENet when the estimator's name contains 'kenet'")
    p.add_argument("--data", required=True, help="folder of HR images")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    codec = KernelCodec.default()
    if a.kind == "kenet" or (a.kind == "auto" and "kenet" in a.estimator):
        from blindsr_gym.agents.kenet import load_kenet

        model = load_kenet(a.estimator)
        estimate = model
    else:
        from blindsr_gym.agents import load_actor

        model = load_actor(a.estimator, codec=codec)
        estimate = lambda lr: codec.decode(codec.action_to_code(model(lr)))  # noqa: E731
    grid = np.round(np.arange(0.15, 4.5 + 1e-9, 0.005), 3)
    bank = torch.as_tensor(isotropic_gaussian(grid, codec.size)).float().reshape(len(grid), -1)
    src = ImageFolder(a.data, mod=a.scale)
    sigmas = gaussian8_sigmas(a.scale)
    table = np.zeros((len(src), len(sigmas)))
    with torch.no_grad():
        for i in range(len(src)):
            hr = to_tensor(src[i])
            for j, s in enumerate(sigmas):
                lr = degrade(hr, isotropic_gaussian(s, codec.size), a.scale)
                table[i, j] = nearest_sigma(estimate(lr), grid, bank)[0]
    rel = table / sigmas[None] - 1
    out = {"command": "python scripts/sigma_estimates.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "mean_relative_error": round(float(rel.mean()), 4),
           "mean_abs_relative_error": round(float(np.abs(rel).mean()), 4),
           "within_minus5_plus2_percent": round(float(((rel > -0.05) & (rel < 0.02)).mean()), 3),
           "true_sigmas": [round(float(s), 2) for s in sigmas],
           "estimated_sigma_per_image": [[round(float(x), 2) for x in row] for row in table]}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
