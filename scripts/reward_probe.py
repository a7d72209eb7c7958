"""Probe a reward around the true kernel: the mean reward of the true kernel's action with one
component moved by +-delta, and of the isotropic Gaussian whose width is the true one times each of
``--sigma-scales``, on a fixed, seeded batch of episodes. Shows whether a metric has ascent directions
(e.g. NIQE with AMGAN), i.e. whether RL can beat the truth, and which.

    python scripts/reward_probe.py --env BlindSR-NIQE-v0 --episodes 32 --dataset ../shared/data/train

Prints JSON: the command, per component and per width scale the mean reward and the fraction of
positive rewards.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def main(argv=None) -> int:
    from blindsr_gym.agents.ddpg import make_vec_env

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="BlindSR-NIQE-v0")
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--delta", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--dataset", default=None, help="HR folder (default: the env's)")
    p.add_argument("--renderer", default=None, help="override the env's renderer")
    p.add_argument("--sigma-scales", default="0.8,0.9,1.1,1.2,1.35,1.5",
                   help="comma-separated multiples of the true width (isotropic episodes); '' for none")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    kw = {k: v for k, v in (("dataset", a.dataset), ("renderer", a.renderer)) if v is not None}
    env = make_vec_env(a.env, a.episodes, **kw)
    _, info = env.reset(seed=a.seed)
    base = np.asarray(info["action_gt"], dtype=np.float32)

    def play(actions):
        env.reset(seed=a.seed)
        _, r, _, _, _ = env.step(np.clip(actions, -1, 1).astype(np.float32))
        return {"reward": round(float(r.mean()), 4), "positive_frac": round(float((r > 0).mean()), 3)}

    out = {"command": "python scripts/reward_probe.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "env": a.env, "episodes": a.episodes, "true_kernel": play(base), "components": []}
    scales = [float(x) for x in a.sigma_scales.split(",") if x.strip()]
    if scales:
        from blindsr_gym.agents.networks import isotropic_action_table
        from blindsr_gym.kernels import isotropic_sigma

        codec = env.core.codec
        sigma = isotropic_sigma(codec.decode(codec.action_to_code(torch.from_numpy(base)))).double().numpy()
        out["sigma_scales"] = []
        for m in scales:  # the family's own [0.2, 4.0] bounds the widths
            actions = isotropic_action_table(codec, np.clip(sigma * m, 0.2, 4.0)).float().numpy()
            out["sigma_scales"].append({"scale": m, **play(actions)})
    for j in range(base.shape[1]):
        for d in (-a.delta, a.delta):
            moved = base.copy()
            moved[:, j] += d
            out["components"].append({"component": j, "delta": d, **play(moved)})
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
