"""Train every algorithm for the same number of env steps; table and plot of eval reward vs env steps.

    python benchmarks/compare_algorithms.py --env BlindSR-PSNR-v0 --steps 4096 --out runs/compare \
        [--algos ddpg,ddpg-eq10,sb3:td3,sb3:sac,sb3:ddpg,sb3:ppo] [--renderer amnet_x4] [--lr-size 64]

``ddpg`` is our one-step DDPG with the sign-penalised critic loss (Eq. 11), ``ddpg-eq10`` the same
with the plain squared error (Eq. 10): the Table 5 comparison. All runs share the env settings, the
seed and the fixed validation episodes. Writes ``OUT/compare.json`` (with the command), ``OUT/compare.md``
(final eval reward, metric, PSNR, wall time) and ``OUT/compare.png`` (eval reward against env steps;
needs matplotlib, the ``plots`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="BlindSR-PSNR-v0")
    p.add_argument("--algos", default="ddpg,ddpg-eq10,sb3:td3,sb3:sac,sb3:ddpg,sb3:ppo")
    p.add_argument("--steps", type=int, default=4096, help="env steps (episodes) per algorithm")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--evals", type=int, default=8, help="evaluations per run")
    p.add_argument("--eval-episodes", type=int, default=64)
    p.add_argument("--renderer", default=None)
    p.add_argument("--lr-size", type=int, default=None)
    p.add_argument("--dataset", default=None)
    p.add_argument("--eval-dataset", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/compare")
    args = p.parse_args()

    from blindsr_gym.agents.ddpg import DDPGConfig, train_ddpg
    from blindsr_gym.agents.sb3 import train_sb3

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env_kwargs = {k: v for k, v in (("renderer", args.renderer), ("lr_size", args.lr_size),
                                    ("dataset", args.dataset)) if v is not None}
    eval_kwargs = {"dataset": args.eval_dataset} if args.eval_dataset else {}
    eval_every = max(args.num_envs, args.steps // args.evals)
    results = {}
    for algo in [a.strip() for a in args.algos.split(",") if a.strip()]:
        logdir = out / algo.replace(":", "_")
        if algo in ("ddpg", "ddpg-eq10"):
            iters = max(1, args.steps // args.num_envs)
            every = max(1, eval_every // args.num_envs)
            cfg = DDPGConfig(env_id=args.env, env_kwargs=env_kwargs, eval_env_kwargs=eval_kwargs,
                             num_envs=args.num_envs, iterations=iters, batch_size=min(96, 4 * args.num_envs),
                             critic_loss="eq10" if algo == "ddpg-eq10" else "eq11", eval_every=every,
                             ckpt_every=every, eval_episodes=args.eval_episodes, seed=args.seed, device=args.device,
                             actor_lr=1e-4, critic_lr=1e-3)
            r = train_ddpg(cfg, logdir, progress=True)
        else:
            r = train_sb3(algo, args.env, args.steps, logdir, num_envs=args.num_envs, env_kwargs=env_kwargs,
                          eval_env_kwargs=eval_kwargs, eval_episodes=args.eval_episodes, eval_freq=eval_every,
                          seed=args.seed, device=args.device, progress=True)
        results[algo] = {"wall_s": r["wall_s"], "final": r["eval"], "history": r["history"]}
        print(json.dumps({algo: results[algo]["final"]}), flush=True)

    doc = {"command": "python " + " ".join(sys.argv), "env": args.env, "steps": args.steps, "results": results}
    (out / "compare.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [f"`{doc['command']}`", "", "| algorithm | eval reward | reward > 0 | PSNR | PSNR true kernel | wall s |",
             "|---|---|---|---|---|---|"]
    for algo, r in results.items():
        f = r["final"]
        nan = float("nan")
        lines.append(f"| {algo} | {f['reward']:.4f} | {f['reward_positive_frac']:.2f} | {f.get('psnr', nan):.2f}"
                     f" | {f.get('psnr_true_kernel', nan):.2f} | {r['wall_s']:.0f} |")
    (out / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install 'blindsr-gym[plots]'): no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for algo, r in results.items():
        ax.plot([h["env_steps"] for h in r["history"]], [h["reward"] for h in r["history"]], marker="o", label=algo)
    ax.axhline(0, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("env steps (episodes)")
    ax.set_ylabel("eval reward (Eq. 8)")
    ax.set_title(f"{args.env}: eval reward on fixed validation episodes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "compare.png", dpi=120)


if __name__ == "__main__":
    main()
