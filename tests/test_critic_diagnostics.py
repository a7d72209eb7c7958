"""scripts/critic_slope.py and scripts/critic_scaling.py: does a DDPG critic's slope at the actor's action
point where the env's reward rises? Their arithmetic by hand, and both scripts end to end on tiny runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from blindsr_gym.agents import load_actor, save_actor
from blindsr_gym.agents.ddpg import DDPGConfig, evaluate_policy, make_vec_env, torch_policy, train_ddpg
from blindsr_gym.agents.networks import Actor
from blindsr_gym.kernels import KernelCodec

SCRIPTS = Path(__file__).parents[1] / "scripts"
FAKE_ENV = {"renderer": "bicubic", "lr_size": 32, "device": "cpu"}
TINY_ACTOR = {"channels": 16, "num_blocks": 1, "reduction": 4}


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sigma_actor(path: Path) -> Path:
    codec = KernelCodec.default()
    torch.manual_seed(0)
    return save_actor(Actor(**TINY_ACTOR, head="sigma", codec=codec), path, codec=codec)


def test_slope_summary_by_hand():
    """Rewards -(t - m)^2 peak at m, so the env's central-difference slope at 0 is exactly 2m. A critic equal
    to the reward agrees everywhere; its negative disagrees everywhere and leads to the worst width."""
    summarise = _script("critic_slope").summarise
    ts = np.linspace(-0.3, 0.3, 7)
    m = np.array([-0.2, -0.05, 0.1, 0.25])
    r = -(ts[None, :] - m[:, None]) ** 2
    same = summarise({"rewards": r, "q": r, "q_slope": 2 * m, "width_log_ratio": np.zeros(4)}, ts)
    assert same["slope_sign_agreement"] == 1.0 and same["slope_correlation"] == pytest.approx(1.0)
    assert same["per_episode"]["true_slope"] == pytest.approx(2 * m, abs=1e-5)
    assert same["r2_all"] == pytest.approx(1.0) and same["r2_within_episode"] == pytest.approx(1.0)
    oracle = np.mean(r.max(1) - r[:, 3])
    assert same["gain_oracle"] == pytest.approx(oracle) and same["gain_critic_argmax"] == pytest.approx(oracle)
    # one step of 0.1 toward each peak: m=-0.2 -> t=-0.1, m=-0.05 -> t=-0.1, m=0.1 and 0.25 -> t=0.1
    step = np.mean([r[0, 2], r[1, 2], r[2, 4], r[3, 4]] - r[:, 3])
    assert same["gain_step_along_critic"] == pytest.approx(step)
    assert same["best_t_true_mean"] == pytest.approx(np.mean([-0.2, 0.0, 0.1, 0.2]))

    wrong = summarise({"rewards": r, "q": -r, "q_slope": -2 * m, "width_log_ratio": np.zeros(4)}, ts)
    assert wrong["slope_sign_agreement"] == 0.0 and wrong["slope_correlation"] == pytest.approx(-1.0)
    assert wrong["gain_critic_argmax"] == pytest.approx(np.mean(r.min(1) - r[:, 3]))
    assert wrong["gain_step_along_critic"] < 0 < same["gain_step_along_critic"]


def test_critic_slope_reads_a_run(tmp_path):
    """On a tiny actor-critic DDPG run: the env's reward at the actor's own width (t = 0) is the reward
    evaluate_policy gives that actor on the same episodes, and the critic's autograd slope is the slope of
    its own Q along the grid (a narrow grid, so the ReLU MLP is nearly linear over it)."""
    init = _sigma_actor(tmp_path / "init.safetensors")
    cfg = DDPGConfig(env_id="BlindSR-PSNR-v0", env_kwargs=FAKE_ENV, num_envs=8, iterations=2, batch_size=8,
                     actor_lr=1e-2, eval_every=2, ckpt_every=2, eval_episodes=8, init_actor=str(init),
                     critic_encoder="actor", exploration="sigma", exploration_noise=0.3, critic_updates=3)
    train_ddpg(cfg, tmp_path / "run", progress=False)
    out = tmp_path / "slope"
    assert _script("critic_slope").main([str(tmp_path / "run"), "--episodes", "8", "--points", "5", "--span",
                                        "0.002", "--seed", "5", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())["runs"]["run"]
    env = make_vec_env("BlindSR-PSNR-v0", 8, **FAKE_ENV)
    actor = load_actor(tmp_path / "run" / "actor.safetensors")
    assert res["mean_curve_true"][2] == pytest.approx(evaluate_policy(torch_policy(actor), env, 5)["reward"], abs=1e-4)
    h = 0.001
    fd = (res["mean_curve_critic"][3] - res["mean_curve_critic"][1]) / (2 * h)
    assert res["critic_slope_mean"] == pytest.approx(fd, rel=0.05, abs=1e-3)
    assert len(res["per_episode"]["critic_slope"]) == 8 and 0 <= res["slope_sign_agreement"] <= 1
    assert out.with_suffix(".png").stat().st_size > 10_000
    with pytest.raises(SystemExit, match="no ddpg_state.pt"):
        _script("critic_slope").main([str(tmp_path), "--out", str(out)])


def test_critic_scaling_caches_and_extends_its_transitions(tmp_path):
    init = _sigma_actor(tmp_path / "init.safetensors")
    scaling = _script("critic_scaling")
    out = tmp_path / "scaling"
    common = ["--actor", str(init), "--renderer", "bicubic", "--lr-size", "32", "--num-envs", "16", "--fits", "1",
              "--epochs", "1", "--eval-episodes", "8", "--points", "3", "--critic-loss", "eq10", "--no-progress",
              "--out", str(out)]
    assert scaling.main([*common, "--transitions", "32", "--sizes", "16", "32"]) == 0
    first = np.load(out.with_suffix(".npz"))["rewards"]
    rec = json.loads(out.with_suffix(".json").read_text())
    assert [r["transitions"] for r in rec["means"]["eq10"]] == [16, 32] and rec["transitions_cached"] == 32
    assert all(f["gain_critic_argmax"] <= f["gain_oracle"] + 1e-12 for f in rec["fits"]) and rec["gain_oracle"] >= 0
    # a longer call keeps the first transitions and adds chunks
    assert scaling.main([*common, "--transitions", "48", "--sizes", "48"]) == 0
    longer = np.load(out.with_suffix(".npz"))["rewards"]
    assert len(longer) == 48 and np.array_equal(longer[:32], first)
    with pytest.raises(SystemExit, match="other settings"):
        scaling.main([*common, "--transitions", "48", "--sizes", "48", "--exploration-noise", "0.1"])
    with pytest.raises(SystemExit):  # --sizes beyond the transitions
        scaling.main([*common, "--transitions", "48", "--sizes", "64"])
