"""Does a DDPG run's critic point its actor the right way? The critic's Q against the env's true reward,
along each episode's width, at the actor's own action.

    python scripts/critic_slope.py runs/diag/psnr_s0 --data ../shared/data/test/Set14 --out OUT

A one-step DDPG actor moves along the critic's slope at its own action, ``dQ/da`` at ``a = P(s)``, and
nothing else. A critic can explain most of a replayed batch's reward variance (``losses/critic_r2``) by how
hard each *image* is, and still get that slope wrong. This script measures the slope itself. For each run
(a ``blindsr-gym train --algo ddpg`` logdir with a sigma-head actor; its last resume state and actor), on
``--episodes`` fixed episodes of ``--data``:

* the true reward curve: the env's Eq. 8 reward of the actor's width scaled by ``exp(t)``, for ``--points``
  values of ``t`` in ``[-span, span]`` (every point renders all episodes once);
* the critic's curve ``Q(s, a(sigma * exp(t)))`` on the same points, and its slope ``dQ/dt`` at ``t = 0`` by
  autograd (the direction the actor step takes, per episode);
* the true slope at ``t = 0`` by central differences over the two grid points next to it.

Writes ``OUT.json`` (the command, per run: the agreement of the slopes' signs, their correlation and means,
the within-episode R² of Q, where each curve peaks; and per episode the curves) and ``OUT.png``
(the mean curves, and the critic's slope against the true one).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np


def load_run(run: Path, data: str | None, episodes: int):
    """The run's config, its last actor and critic (from the resume state), and an env on ``data``."""
    import torch

    from blindsr_gym.agents import load_actor
    from blindsr_gym.agents.networks import ActorFeatureCritic, Critic
    from blindsr_gym.agents.rollouts import make_vec_env

    path = run / "ddpg_state.pt"
    if not path.is_file():
        raise SystemExit(f"{run}: no ddpg_state.pt (is it a `blindsr-gym train --algo ddpg` logdir?)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = state["config"]
    kwargs = {**cfg["env_kwargs"], **cfg["eval_env_kwargs"], "device": "cpu"}
    if data is not None:
        kwargs["dataset"] = data
    env = make_vec_env(cfg["env_id"], episodes, **kwargs)
    codec = env.core.codec
    actor = load_actor(run / "actor.safetensors", codec=codec)
    actor.load_state_dict(state["actor"])  # the resume state's, which the actor file was written with
    if getattr(actor, "head_kind", None) != "sigma":
        raise SystemExit(f"{run}: the slope along the width needs a sigma-head actor")
    if cfg["critic_encoder"] == "actor":
        critic = ActorFeatureCritic(load_actor(cfg["init_actor"], codec=codec))
    else:
        critic = Critic(code_len=codec.length)
    critic.load_state_dict(state["critic"])
    return cfg, actor.eval(), critic.eval(), env


def critic_curve(q_of, actor, sigma, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A critic along each episode's width: ``Q [N, len(ts)]`` at ``sigma * exp(ts)`` and its slope at
    ``t = 0`` by autograd (the direction the actor's step takes). ``q_of(actions) -> Q [N]`` is the critic
    on the episodes' observations (its image encoding computed once by the caller)."""
    import torch

    with torch.no_grad():
        q = np.stack([q_of(actor.sigma_to_action(sigma * float(np.exp(t))).clamp(-1, 1)).double().numpy()
                      for t in ts], 1)
    t0 = torch.zeros(len(sigma), requires_grad=True)
    q_of(actor.sigma_to_action(sigma * t0.exp()).clamp(-1, 1)).sum().backward()
    return q, t0.grad.double().numpy()


def measure(actor, critic, env, seed: int, ts: np.ndarray) -> dict:
    """Per episode: the true rewards and the critic's Q at widths ``sigma * exp(ts)``, the slopes at 0, and
    the log of the actor's width over the true one."""
    import torch

    from blindsr_gym.agents.networks import obs_to_tensor
    from blindsr_gym.kernels import isotropic_sigma

    obs, info = env.reset(seed=seed)
    x = obs_to_tensor(obs)
    with torch.no_grad():
        sigma = actor.sigma(x)
        enc = critic.encode(x)
    rewards = []
    for t in ts:
        env.reset(seed=seed)
        _, r, _, _, _ = env.step(actor.sigma_to_action(sigma * float(np.exp(t))).clamp(-1, 1).numpy())
        rewards.append(np.asarray(r, dtype=np.float64))
    q, q_slope = critic_curve(lambda a: critic(x, a, enc=enc), actor, sigma, ts)
    true_w = isotropic_sigma(env.core.codec.decode(torch.as_tensor(info["code_gt"], dtype=torch.float32))).numpy()
    return {"rewards": np.stack(rewards, 1), "q": q, "q_slope": q_slope,
            "width_log_ratio": np.log(sigma.double().numpy() / np.maximum(true_w, 1e-6))}


def summarise(m: dict, ts: np.ndarray) -> dict:
    r, q = m["rewards"], m["q"]
    c = len(ts) // 2
    true_slope = (r[:, c + 1] - r[:, c - 1]) / (ts[c + 1] - ts[c - 1])
    rc, qc = r - r.mean(1, keepdims=True), q - q.mean(1, keepdims=True)
    agree = np.sign(true_slope) == np.sign(m["q_slope"])
    return {
        "episodes": len(r),
        "slope_sign_agreement": float(agree.mean()),
        "slope_correlation": float(np.corrcoef(true_slope, m["q_slope"])[0, 1]),
        "true_slope_mean": float(true_slope.mean()),
        "critic_slope_mean": float(m["q_slope"].mean()),
        "true_slope_positive_frac": float((true_slope > 0).mean()),
        "critic_slope_positive_frac": float((m["q_slope"] > 0).mean()),
        "r2_all": float(1 - ((r - q) ** 2).sum() / ((r - r.mean()) ** 2).sum()),
        "r2_within_episode": float(1 - ((rc - qc) ** 2).sum() / (rc ** 2).sum()),
        "reward_at_actor": float(r[:, c].mean()),
        # what following the critic would gain on these episodes: one grid step along the sign of its slope,
        # or a jump to the width where its Q peaks; against the best width of each episode (the oracle)
        "gain_step_along_critic": float((r[np.arange(len(r)), c + np.sign(m["q_slope"]).astype(int)] - r[:, c]).mean()),
        "gain_critic_argmax": float((r[np.arange(len(r)), q.argmax(1)] - r[:, c]).mean()),
        "gain_oracle": float((r.max(1) - r[:, c]).mean()),
        "best_t_true_mean": float(ts[r.argmax(1)].mean()),
        "best_t_critic_mean": float(ts[q.argmax(1)].mean()),
        "mean_curve_true": r.mean(0).round(5).tolist(),
        "mean_curve_critic": q.mean(0).round(5).tolist(),
        "width_log_ratio_mean": float(m["width_log_ratio"].mean()),
        "per_episode": {"true_slope": true_slope.round(5).tolist(), "critic_slope": m["q_slope"].round(5).tolist(),
                        "width_log_ratio": m["width_log_ratio"].round(5).tolist()},
    }


def plot(results: dict, ts: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, (label, s) in enumerate(results.items()):
        colour = f"C{i}"
        axes[0].plot(ts, s["mean_curve_true"], "o-", color=colour, label=f"{label}: env reward")
        axes[0].plot(ts, s["mean_curve_critic"], "--", color=colour, label=f"{label}: critic Q")
        pe = s["per_episode"]
        axes[1].scatter(pe["true_slope"], pe["critic_slope"], s=12, color=colour, alpha=0.7,
                        label=f"{label}: signs agree {s['slope_sign_agreement']:.0%}, r {s['slope_correlation']:.2f}")
    axes[0].axvline(0, color="grey", lw=0.8, ls="--")
    axes[0].set(title="mean over episodes, along the actor's width", xlabel="t (width = actor's width x exp(t))",
                ylabel="reward / Q")
    axes[1].axhline(0, color="grey", lw=0.8, ls="--")
    axes[1].axvline(0, color="grey", lw=0.8, ls="--")
    axes[1].set(title="slope at the actor's width, per episode", xlabel="env: dR/dt (central difference)",
                ylabel="critic: dQ/dt (autograd)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="DDPG logdirs with a sigma-head actor")
    p.add_argument("--labels", nargs="*", default=None, help="one label per run (default: the folder names)")
    p.add_argument("--data", default=None, help="image folder of the episodes (Set14 to choose by; default: "
                   "each run's validation images)")
    p.add_argument("--episodes", type=int, default=64)
    p.add_argument("--seed", type=int, default=2000000, help="seed of the episodes (not the runs' validation seed)")
    p.add_argument("--span", type=float, default=0.3, help="widths from exp(-span) to exp(span) times the actor's")
    p.add_argument("--points", type=int, default=13, help="odd number of widths, t = 0 among them")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help="writes OUT.json and OUT.png")
    a = p.parse_args(argv)
    labels = a.labels or [Path(r).name for r in a.runs]
    if len(labels) != len(a.runs):
        p.error(f"--labels: {len(labels)} labels for {len(a.runs)} runs")
    if a.points < 3 or a.points % 2 == 0:
        p.error("--points must be odd and at least 3, so that t = 0 is on the grid with a point on each side")
    if not a.span > 0 or a.episodes < 2:
        p.error("--span must be > 0 and --episodes at least 2")
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    ts = np.linspace(-a.span, a.span, a.points)
    results = {}
    for label, run in zip(labels, a.runs, strict=True):
        cfg, actor, critic, env = load_run(Path(run), a.data, a.episodes)
        s = summarise(measure(actor, critic, env, a.seed, ts), ts)
        results[label] = {"run": run, "env_id": cfg["env_id"], "critic_loss": cfg["critic_loss"], **s}
        print(f"{label}: slope signs agree {s['slope_sign_agreement']:.0%}, correlation {s['slope_correlation']:.2f}, "
              f"mean slope env {s['true_slope_mean']:+.3f} critic {s['critic_slope_mean']:+.3f}, "
              f"within-episode R² {s['r2_within_episode']:.2f} (all {s['r2_all']:.2f})", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv or sys.argv[1:])]),
              "data": a.data or "each run's validation images", "episodes": a.episodes, "seed": a.seed,
              "t": ts.round(5).tolist(), "runs": results}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    plot(results, ts, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
