"""Lab script of 2026-11-28 (docs/experiments/2026-11-28_critic_slope.md): critics refitted on one DDPG run's
own replay buffer, with other losses, sizes and inputs, each scored like scripts/critic_slope.py scores the
run's critic (its slope at the run's final actor's width against the env's, on unseen episodes).

    python docs/experiments/2026-11-28_critic_refit.py runs/diag/psnr_s0 --data ../shared/data/test/Set14 \
        --out docs/experiments/2026-11-28_critic_refit.json

Variants (each fitted like the recipe's critic: Adam 1e-3, batches of 64 drawn from the whole buffer):
the run's loss and Eq. 10 at 2,048 and 8,192 steps; Eq. 10 without the image features (the MLP sees only
``[a0, a, a - a0]``), with 64 hidden units instead of 256, both, and with weight decay 0.1.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import critic_slope  # noqa: E402

KEYS = ("slope_sign_agreement", "slope_correlation", "true_slope_mean", "critic_slope_mean", "r2_all",
        "r2_within_episode", "gain_step_along_critic", "gain_critic_argmax", "gain_oracle")


class VariantCritic(nn.Module):
    """The recipe's critic head over ``[f, a0, a, a - a0]`` (or without ``f``), on the run's frozen encoder."""

    def __init__(self, encoder_critic, hidden: int = 256, image_features: bool = True):
        super().__init__()
        self.base, self.image_features = encoder_critic, image_features
        c, n = encoder_critic.encoder.config["channels"], encoder_critic.encoder.code_len
        self.q = nn.Sequential(nn.Linear((c if image_features else 0) + 3 * n, hidden), nn.ReLU(),
                               nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, f, a0, a):
        return self.q(torch.cat(([f] if self.image_features else []) + [a0, a, a - a0], 1)).squeeze(1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("--data", required=True)
    p.add_argument("--episodes", type=int, default=64)
    p.add_argument("--seed", type=int, default=2000000)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    from blindsr_gym.agents.ddpg import mse_critic_loss, sign_penalized_critic_loss
    from blindsr_gym.agents.networks import obs_to_tensor

    torch.set_num_threads(2)
    cfg, actor, critic, env = critic_slope.load_run(Path(a.run), a.data, a.episodes)
    buf = torch.load(Path(a.run) / "ddpg_state.pt", map_location="cpu", weights_only=False)["buffer"]
    feats, acts, rews = buf["features"].float(), buf["actions"].float(), buf["rewards"].float()
    ts = np.linspace(-0.3, 0.3, 13)
    obs, _ = env.reset(seed=a.seed)
    x = obs_to_tensor(obs)
    with torch.no_grad():
        sigma = actor.sigma(x)
        f, a0 = critic.encode(x)
    grid = [actor.sigma_to_action(sigma * float(np.exp(t))).clamp(-1, 1) for t in ts]
    truth = []
    for g in grid:
        env.reset(seed=a.seed)
        truth.append(np.asarray(env.step(g.numpy())[1], dtype=np.float64))
    truth = np.stack(truth, 1)

    def score(q_of):  # q_of(action) -> Q on the grid's episodes
        q, q_slope = critic_slope.critic_curve(q_of, actor, sigma, ts)
        s = critic_slope.summarise({"rewards": truth, "q": q, "q_slope": q_slope,
                                    "width_log_ratio": np.zeros(len(x))}, ts)
        return {k: round(s[k], 4) for k in KEYS}

    def fit(loss="eq10", steps=2048, hidden=256, image_features=True, weight_decay=0.0, seed=0):
        torch.manual_seed(seed)
        v = VariantCritic(critic, hidden, image_features)
        opt = torch.optim.AdamW(v.q.parameters(), lr=1e-3, weight_decay=weight_decay)
        loss_fn = sign_penalized_critic_loss if loss == "eq11" else mse_critic_loss
        rng = np.random.default_rng(seed)
        fb, ab = critic.from_pooled(feats)
        for _ in range(steps):
            i = torch.from_numpy(rng.integers(len(rews), size=64))
            opt.zero_grad(set_to_none=True)
            loss_fn(v(fb[i], ab[i], acts[i]), rews[i]).backward()
            opt.step()
        return lambda act: v(f, a0, act)

    results = {"the run's critic": score(lambda act: critic(None, act, enc=(f, a0)))}
    variants = {f"{cfg['critic_loss']}, 2,048 steps": dict(loss=cfg["critic_loss"]),
                f"{cfg['critic_loss']}, 8,192 steps": dict(loss=cfg["critic_loss"], steps=8192),
                "eq10, 2,048 steps": {}, "eq10, 8,192 steps": dict(steps=8192),
                "eq10, no image features": dict(image_features=False), "eq10, 64 hidden": dict(hidden=64),
                "eq10, no image features, 64 hidden": dict(image_features=False, hidden=64),
                "eq10, weight decay 0.1": dict(weight_decay=0.1)}
    for name, kw in variants.items():
        results[name] = score(fit(**kw))
        print(name, results[name], flush=True)
    record = {"command": "python " + " ".join(shlex.quote(v) for v in [sys.argv[0], *(argv or sys.argv[1:])]),
              "buffer": {"transitions": len(rews), "reward_mean": float(rews.mean()), "reward_std": float(rews.std())},
              "results": results}
    Path(a.out).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
