"""How the size of the SR image that NIQE scores changes the NIQE reward's signal and noise (issue 22's
reward-size question, at CPU scale: no training, only the reward itself).

For each ``lr_size`` (SR side = 4 x lr_size: 64 -> 256 px, 4 NIQE blocks of 96; 96 -> 384, 16; 128 -> 512, 25),
BlindSR-NIQE-v0 (AMGAN, Eq. 8 with NIQE) draws the same N seeded episodes from a folder of HR images, and
scores fixed policies on them: the true width scaled by 0.8 and 1.2, and the shipped ``actor_niqe_x4``.
Prints JSON: per size and policy the mean Eq. 8 reward, its standard deviation over episodes, the fraction
of positive rewards, and the mean's signal-to-noise ratio |mean| / (std / sqrt(N)); and the spread of the
true-kernel baseline NIQE.

    python scripts/niqe_reward_size.py --data ../shared/data/train --episodes 32 --sizes 64 96 128

Use training images (selection discipline: no test set is looked at).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of HR images (training images)")
    p.add_argument("--episodes", type=int, default=32, help="episodes per size (the same seeds at every size)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 96, 128], help="LR sizes")
    p.add_argument("--seed", type=int, default=0, help="episode seed")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from blindsr_gym.agents import load_actor
    from blindsr_gym.agents.rollouts import make_vec_env, torch_policy
    from blindsr_gym.kernels import isotropic_gaussian

    actor = None
    out = {"command": "python scripts/niqe_reward_size.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "episodes": args.episodes, "sizes": {}}
    for size in args.sizes:
        t0 = time.perf_counter()
        env = make_vec_env("BlindSR-NIQE-v0", args.episodes, dataset=args.data, lr_size=size, device="cpu",
                           precision="bf16")
        codec = env.core.codec
        actor = actor or torch_policy(load_actor("actor_niqe_x4", codec=codec))

        row = {}
        for name in ("width x0.8", "width x1.2", "actor_niqe_x4"):
            obs, info = env.reset(seed=args.seed)
            if name == "actor_niqe_x4":
                actions = actor(obs)
            else:
                k = isotropic_gaussian(np.asarray(info["sigma"]) * float(name[-3:]), codec.size)
                actions = codec.code_to_action(codec.encode(k)).numpy()
            _, r, *_, step_info = env.step(np.asarray(actions, np.float32))
            r = np.asarray(r, np.float64)
            sd = float(r.std(ddof=1))
            row[name] = {"mean": round(float(r.mean()), 4), "std": round(sd, 4),
                         "positive": round(float((r > 0).mean()), 3),
                         "snr": round(abs(float(r.mean())) / (sd / np.sqrt(len(r))), 2)}
        base = np.asarray(step_info["final_info"]["baseline"]["niqe"], np.float64)
        row["baseline_niqe"] = {"mean": round(float(base.mean()), 3), "std": round(float(base.std(ddof=1)), 3),
                                "min": round(float(base.min()), 3), "max": round(float(base.max()), 3)}
        row["niqe_blocks"] = (4 * size // 96) ** 2
        row["seconds"] = round(time.perf_counter() - t0, 1)
        out["sizes"][str(size)] = row
        print(f"lr {size}: {json.dumps(row)}", file=sys.stderr)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
