"""How many episodes does a one-step DDPG critic need before its slope is worth following? Offline, on the
critic of the package's fine-tuning recipe (a frozen pre-trained actor as its encoder).

    python scripts/critic_scaling.py --train-data ../shared/data/train --eval-data ../shared/data/test/Set14 \
        --transitions 16384 --sizes 1024 4096 16384 --out OUT

1. **Transitions**, as the DDPG recipe collects them before its actor moves: episodes of the env on the
   training images, each played once with the pre-trained actor's width times ``exp(N(0, noise))``
   (``--exploration sigma``). Kept: the frozen encoder's features, the action, the reward. Collected in
   chunks of ``--num-envs`` episodes, chunk ``k`` seeded ``seed + k``, so the first N transitions are the
   same whatever ``--transitions`` is; cached in ``OUT.npz`` and extended by a later call with more.
2. **The truth on unseen images**: ``--eval-episodes`` episodes of ``--eval-data``, each rendered at the
   actor's width times ``exp(t)`` for ``t`` on a grid (as ``scripts/critic_slope.py``).
3. **Critics fitted on the first N transitions** for each N in ``--sizes``, each critic loss and
   ``--fits`` seeds: ``ActorFeatureCritic`` (the package's), Adam at ``--critic-lr``, batches of 64,
   ``--epochs`` passes over the N transitions. Each is scored on the grid: the agreement of its slope's
   sign with the env's at the actor's width, their correlation, and what following it gains (one grid step
   along its slope's sign; a jump to its Q's peak), against the best width of each episode (the oracle).

Writes ``OUT.json`` (the command, every fit's scores, the means per N) and ``OUT.png`` (the scores against
N). Nothing here is a test set: choose ``--eval-data`` among the selection images.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

SCORES = ("slope_sign_agreement", "slope_correlation", "gain_step_along_critic", "gain_critic_argmax",
          "r2_within_episode")


def make_env(env_id: str, data: str | None, n: int, precision: str, lr_size: int | None, renderer: str | None):
    from blindsr_gym.agents.rollouts import make_vec_env

    kwargs = {"precision": precision, "device": "cpu", "dataset": data, "lr_size": lr_size, "renderer": renderer}
    return make_vec_env(env_id, n, **{k: v for k, v in kwargs.items() if v is not None})


def collect(actor, env, chunks: range, seed: int, noise: float, bar=None):
    """``(features, actions, rewards)`` of the chunks' episodes, explored along the width."""
    from blindsr_gym.agents.networks import obs_to_tensor

    feats, acts, rews = [], [], []
    for k in chunks:
        obs, _ = env.reset(seed=seed + k)
        rng = np.random.default_rng([seed, k])
        x = obs_to_tensor(obs)
        with torch.no_grad():
            f = actor.pooled(x)
            sigma = actor.sigma(x)
            a = actor.sigma_to_action(sigma * torch.from_numpy(rng.normal(0, noise, len(x))).float().exp())
        a = a.clamp(-1, 1).numpy()
        _, r, _, _, _ = env.step(a)
        feats.append(f.numpy())
        acts.append(a)
        rews.append(np.asarray(r, dtype=np.float32))
        if bar is not None:
            bar.update(1)
    return np.concatenate(feats), np.concatenate(acts), np.concatenate(rews)


def grid_truth(actor, env, seed: int, ts: np.ndarray):
    """The eval episodes' features, the actor's widths, and the env's rewards at ``width * exp(ts)``."""
    from blindsr_gym.agents.networks import obs_to_tensor

    obs, _ = env.reset(seed=seed)
    x = obs_to_tensor(obs)
    with torch.no_grad():
        f, sigma = actor.pooled(x), actor.sigma(x)
    rewards = []
    for t in ts:
        env.reset(seed=seed)
        _, r, _, _, _ = env.step(actor.sigma_to_action(sigma * float(np.exp(t))).clamp(-1, 1).numpy())
        rewards.append(np.asarray(r, dtype=np.float64))
    return f, sigma, np.stack(rewards, 1)


def fit_critic(actor, feats, acts, rews, loss: str, lr: float, epochs: int, seed: int):
    from blindsr_gym.agents.ddpg import mse_critic_loss, sign_penalized_critic_loss
    from blindsr_gym.agents.networks import ActorFeatureCritic

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        critic = ActorFeatureCritic(actor)
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    loss_fn = sign_penalized_critic_loss if loss == "eq11" else mse_critic_loss
    rng = np.random.default_rng([seed, len(rews)])
    f, a, r = (torch.from_numpy(v) for v in (feats, acts, rews))
    for _ in range(max(1, epochs * len(rews) // 64)):
        idx = torch.from_numpy(rng.integers(len(rews), size=64))
        q = critic(None, a[idx], enc=critic.from_pooled(f[idx]))
        opt.zero_grad(set_to_none=True)
        loss_fn(q, r[idx]).backward()
        opt.step()
    return critic.eval()


def score(critic, actor, f, sigma, rewards, ts) -> dict:
    from critic_slope import critic_curve, summarise

    enc = critic.from_pooled(f)
    q, q_slope = critic_curve(lambda a: critic(None, a, enc=enc), actor, sigma, ts)
    s = summarise({"rewards": rewards, "q": q, "q_slope": q_slope, "width_log_ratio": np.zeros(len(f))}, ts)
    return {k: s[k] for k in (*SCORES, "gain_oracle", "true_slope_mean", "critic_slope_mean")}


def plot(means: dict, path: Path, oracle: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for i, (loss, rows) in enumerate(means.items()):
        n = [r["transitions"] for r in rows]
        for ax, keys in zip(axes, (("slope_correlation", "slope_sign_agreement"),
                                   ("gain_step_along_critic", "gain_critic_argmax"), ("r2_within_episode",)),
                            strict=True):
            for j, k in enumerate(keys):
                ax.errorbar(n, [r[k]["mean"] for r in rows], yerr=[r[k]["std"] for r in rows], marker="o",
                            ls="-" if j == 0 else ":", color=f"C{i}", capsize=3, label=f"{loss}: {k}")
    axes[0].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[0].set(title="critic slope vs env slope at the actor's width", ylabel="correlation / sign agreement")
    axes[1].axhline(oracle, color="green", lw=0.8, ls="--", label="oracle: best width per episode")
    axes[1].set(title="reward gained by following the critic", ylabel="mean reward change")
    axes[2].set(title="within-episode R² of Q along the width", ylabel="R²")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("transitions the critic was fitted on")
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--actor", default="actor_psnr_x4", help="the pre-trained sigma-head actor (name or file)")
    p.add_argument("--env", default="BlindSR-PSNR-v0")
    p.add_argument("--lr-size", type=int, default=None, help="default: the env's")
    p.add_argument("--renderer", default=None, help="default: the env's")
    p.add_argument("--train-data", default=None, help="HR image folder (default: the built-in images)")
    p.add_argument("--eval-data", default=None,
                   help="selection images (Set14), never the test set (default: the built-in images)")
    p.add_argument("--transitions", type=int, default=16384)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--exploration-noise", type=float, default=0.25, help="std of log width")
    p.add_argument("--critic-loss", nargs="+", default=["eq10", "eq11"], choices=["eq10", "eq11"])
    p.add_argument("--critic-lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=64, help="passes over the N transitions (the recipe: ~64)")
    p.add_argument("--fits", type=int, default=3, help="critic seeds per N and loss")
    p.add_argument("--eval-episodes", type=int, default=128)
    p.add_argument("--span", type=float, default=0.3)
    p.add_argument("--points", type=int, default=13)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, help="writes OUT.npz (the transitions' cache), OUT.json, OUT.png")
    a = p.parse_args(argv)
    if a.points < 3 or a.points % 2 == 0:
        p.error("--points must be odd and at least 3")
    if a.transitions % a.num_envs:
        p.error(f"--transitions must be a multiple of --num-envs ({a.num_envs})")
    if max(a.sizes) > a.transitions or min(a.sizes) < 1:
        p.error(f"--sizes must lie in [1, --transitions={a.transitions}]")
    if a.threads:
        torch.set_num_threads(a.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tqdm import tqdm

    from blindsr_gym.agents import load_actor

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = make_env(a.env, a.train_data, a.num_envs, a.precision, a.lr_size, a.renderer)
    actor = load_actor(a.actor, codec=env.core.codec)
    if getattr(actor, "head_kind", None) != "sigma":
        raise SystemExit(f"{a.actor}: exploring along the width needs a sigma-head actor")
    key = {k: str(v) for k, v in dict(actor=a.actor, env=a.env, lr_size=a.lr_size, renderer=a.renderer,
                                        train_data=a.train_data,
                                        num_envs=a.num_envs, noise=a.exploration_noise, seed=a.seed,
                                        precision=a.precision).items()}
    cache = out.with_suffix(".npz")
    feats = acts = rews = None
    if cache.is_file():
        z = np.load(cache)
        if json.loads(str(z["key"])) != key:
            raise SystemExit(f"{cache} was collected with other settings ({z['key']}); use another --out")
        feats, acts, rews = z["features"], z["actions"], z["rewards"]
    have = 0 if rews is None else len(rews) // a.num_envs
    want = a.transitions // a.num_envs
    t_collect = time.perf_counter()
    if want > have:
        bar = None if a.no_progress else tqdm(total=want - have, desc="transitions (chunks)")
        new = collect(actor, env, range(have, want), a.seed, a.exploration_noise, bar)
        if bar is not None:
            bar.close()
        feats, acts, rews = new if rews is None else (np.concatenate([o, n]) for o, n in
                                                        zip((feats, acts, rews), new, strict=True))
        np.savez(cache, features=feats, actions=acts, rewards=rews, key=json.dumps(key))
    t_collect = time.perf_counter() - t_collect
    ts = np.linspace(-a.span, a.span, a.points)
    eval_env = make_env(a.env, a.eval_data, a.eval_episodes, a.precision, a.lr_size, a.renderer)
    f, sigma, truth = grid_truth(actor, eval_env, 2000000 + a.seed, ts)
    fits, means = [], {}
    for loss in a.critic_loss:
        means[loss] = []
        for n in sorted(a.sizes):
            rows = [score(fit_critic(actor, feats[:n], acts[:n], rews[:n], loss, a.critic_lr, a.epochs, s),
                          actor, f, sigma, truth, ts) for s in range(a.fits)]
            fits += [{"critic_loss": loss, "transitions": n, "fit_seed": s, **r} for s, r in enumerate(rows)]
            m = {k: {"mean": float(np.mean([r[k] for r in rows])), "std": float(np.std([r[k] for r in rows]))}
                 for k in SCORES}
            means[loss].append({"transitions": n, **m})
            print(f"{loss} N={n}: slope correlation {m['slope_correlation']['mean']:+.2f}, signs agree "
                  f"{m['slope_sign_agreement']['mean']:.0%}, gain one step {m['gain_step_along_critic']['mean']:+.3f}, "
                  f"at Q's peak {m['gain_critic_argmax']['mean']:+.3f} (oracle {rows[0]['gain_oracle']:+.3f})",
                  flush=True)
    record = {"command": "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv or sys.argv[1:])]),
              "settings": key, "eval_data": a.eval_data, "eval_episodes": a.eval_episodes, "t": ts.round(5).tolist(),
              "collect_s": round(t_collect, 1), "transitions_cached": len(rews),
              "reward_at_actor": float(truth[:, len(ts) // 2].mean()), "gain_oracle": fits[0]["gain_oracle"],
              "true_mean_curve": truth.mean(0).round(5).tolist(), "means": means, "fits": fits}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    plot(means, out.with_suffix(".png"), fits[0]["gain_oracle"])
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
