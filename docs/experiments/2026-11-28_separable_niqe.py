"""Lab script (2026-11-28): how far the separable Eq. 1 moves the env's rewards on the CPU.

    python docs/experiments/2026-11-28_separable_niqe.py [--episodes 12]
        > docs/experiments/2026-11-28_separable_niqe.json

The same episodes (seed, image window, width) through the env twice: with ``options={"sigma": s}``, whose
kernel is separable (``taps``), with the separable path forced on; and with ``options={"kernel": K}``, the same
Gaussian given as a kernel, which takes the two-step path. The same random action is rendered in both. Prints
the largest LR level difference, the share of identical LR pixels and the largest reward differences, per
reward. ``amnet_x4``, fp32, one CPU thread.
"""

import argparse
import json
import sys

import numpy as np
import torch

from blindsr_gym.envs import BlindSREnv
from blindsr_gym.kernels import isotropic_gaussian


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {"command": "python " + " ".join(sys.argv), "episodes": args.episodes}
    for metric in ("psnr", "niqe"):
        env = BlindSREnv(metric=metric, device="cpu", precision="fp32")
        env.core.separable_eq1 = True
        rng = np.random.default_rng(0)
        worst_level, same, worst_reward = 0, 1.0, 0.0
        for seed in range(args.episodes):
            s = float(rng.uniform(0.3, 4))
            a = rng.uniform(-1, 1, 15).astype(np.float32)
            o1, _ = env.reset(seed=seed, options={"sigma": s})
            r1 = env.step(a)[1]
            o2, _ = env.reset(seed=seed, options={"kernel": isotropic_gaussian(s).numpy()})
            r2 = env.step(a)[1]
            d = np.abs(o1.astype(int) - o2.astype(int))
            worst_level, same = max(worst_level, int(d.max())), min(same, float((d == 0).mean()))
            worst_reward = max(worst_reward, abs(r1 - r2))
        out[metric] = {"max_level_diff": worst_level, "min_identical_fraction": round(same, 6),
                       "max_reward_diff": worst_reward}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
