"""Agents: the networks against the paper's figures, Eq. 10/11 by hand, DDPG and SB3 short runs."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from blindsr_gym.agents import ActorCheckpointError, load_actor, save_actor
from blindsr_gym.agents.ddpg import (
    DDPGConfig,
    ReplayBuffer,
    decayed,
    evaluate_policy,
    make_vec_env,
    mse_critic_loss,
    sign_penalized_critic_loss,
    torch_policy,
    train_ddpg,
)
from blindsr_gym.agents.networks import Actor, ActorFeatureCritic, Critic, count_parameters, obs_to_tensor
from blindsr_gym.kernels import KernelCodec
from blindsr_gym.utils import weights_digest

FAKE_ENV = {"renderer": "bicubic", "lr_size": 32, "device": "cpu"}
TINY_ACTOR = {"channels": 16, "num_blocks": 1, "reduction": 4}


def test_critic_losses_by_hand():
    q = torch.tensor([1.0, -1.0, 0.5, -2.0])
    r = torch.tensor([2.0, -1.0, -0.5, 0.0])
    # gamma = [1, -1, -1, -1] (r > 0 only for the first); sign penalties max(0, -gamma q) = [0, 0, 0.5, 0]
    # squared errors (r - q)^2 = [1, 0, 1, 4]
    assert float(sign_penalized_critic_loss(q, r)) == pytest.approx((0.5 + 6) / 4)
    assert float(mse_critic_loss(q, r)) == pytest.approx(6 / 4)
    # r = 0 counts as "not positive": gamma = -1 penalises q > 0
    assert float(sign_penalized_critic_loss(torch.tensor([0.3]), torch.tensor([0.0]))) == pytest.approx(0.3 + 0.09)


def test_actor_matches_paper_figures():
    from torch.utils.flop_counter import FlopCounterMode

    actor = Actor()
    n = count_parameters(actor)
    assert n == 379_107 and abs(n - 383_000) / 383_000 < 0.05  # AMNet-RL 1,982K - AMNet 1,599K
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        a = actor(torch.rand(2, 3, 64, 64))
    assert fc.get_total_flops() / 2 / 2 == pytest.approx(1.517e9, rel=0.01)  # + AMNet's 5.10 G = 6.6 G
    assert a.shape == (2, 15) and a.abs().max() <= 1
    assert Critic()(torch.rand(2, 3, 64, 64), a).shape == (2,)
    with pytest.raises(ValueError, match="lr must be"):
        actor(torch.rand(2, 64, 64, 3))


def test_obs_to_tensor():
    obs = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = obs_to_tensor(obs)
    assert x.shape == (2, 3, 8, 8) and float(x[1, 2, 3, 4]) == pytest.approx(obs[1, 3, 4, 2] / 255)
    with pytest.raises(ValueError):
        obs_to_tensor(np.zeros((2, 3, 8, 8)))


def test_replay_buffer_ring_and_state():
    b = ReplayBuffer(5, (2, 2, 3), 15)
    b.add(np.arange(7)[:, None, None, None] * np.ones((7, 2, 2, 3), np.uint8), np.zeros((7, 15)), np.arange(7.0))
    assert b.size == 5 and b.pos == 2 and sorted(b.rewards) == [2, 3, 4, 5, 6]
    c = ReplayBuffer(5, (2, 2, 3), 15)
    c.load_state_dict(b.state_dict())
    assert np.array_equal(c.rewards, b.rewards) and c.pos == 2
    o, a, r = b.sample(np.random.default_rng(0), 8)
    assert o.shape == (8, 2, 2, 3) and np.all(o[:, 0, 0, 0] == r)


def _buffer_images(cfg: DDPGConfig, state: dict) -> np.ndarray:
    """The images of a DDPG state's replay buffer, drawn again from their sources as a resume does."""
    return make_vec_env(cfg.env_id, 1, **cfg.env_kwargs).observations(json.loads(state["buffer"]["sources"]))


def test_replay_buffer_keeps_sources_not_images_and_checks_them_on_load(tmp_path, builtin_images):
    """With sources, a state holds each image's generator state (not its pixels); loading draws the images
    again, byte for byte here, and refuses images that are not the ones saved (another dataset)."""
    env = make_vec_env("BlindSR-PSNR-v0", 4, **FAKE_ENV)
    b = ReplayBuffer(6, env.single_observation_space.shape, 15)
    images, seen = [], []
    obs, _ = env.reset(seed=3)
    for _ in range(2):  # 8 transitions into 6 slots: the ring wraps
        sources = env.episode_sources()
        b.add(obs, np.zeros((4, 15)), np.arange(4.0), sources=sources)
        images.append(obs)
        seen.append(sources)
        obs, *_ = env.step(env.action_space.sample())
    sd = b.state_dict()
    assert "obs" not in sd and len(json.loads(sd["sources"])) == 6
    assert len(sd["sources"]) < 6 * 400  # a few hundred bytes each, not 32x32x3 images
    fresh = make_vec_env("BlindSR-PSNR-v0", 4, **FAKE_ENV)  # a resume: another env, never reset
    c = ReplayBuffer(6, env.single_observation_space.shape, 15)
    assert c.load_state_dict(sd, regenerate=fresh.observations) == {"regenerated": 6, "inexact": 0}
    assert np.array_equal(c.obs, b.obs) and c.pos == b.pos == 2
    assert np.array_equal(c.obs, np.concatenate([images[1][2:], images[0][2:], images[1][:2]]))  # the ring's slots
    c.add(obs, np.zeros((4, 15)), np.zeros(4), sources=env.episode_sources())  # and it goes on
    with pytest.raises(ValueError, match="regenerate"):
        ReplayBuffer(6, env.single_observation_space.shape, 15).load_state_dict(sd)
    import cv2

    for name, img in zip(builtin_images.names, builtin_images, strict=True):  # another dataset: the photos mirrored
        cv2.imwrite(str(tmp_path / f"{name}.png"), cv2.cvtColor(np.ascontiguousarray(img[:, ::-1]), cv2.COLOR_RGB2BGR))
    other = make_vec_env("BlindSR-PSNR-v0", 4, **{**FAKE_ENV, "dataset": str(tmp_path)})
    with pytest.raises(ValueError, match="6 of the 6 replayed images .* not the images saved"):
        ReplayBuffer(6, env.single_observation_space.shape, 15).load_state_dict(sd, regenerate=other.observations)
    inexact = dict(sd, checks=sd["checks"].clone())
    inexact["checks"][0, 0] += 1  # a CRC that differs with a pixel sum that agrees: another device's rounding
    assert ReplayBuffer(6, env.single_observation_space.shape, 15).load_state_dict(
        inexact, regenerate=fresh.observations)["inexact"] == 1
    without = ReplayBuffer(6, env.single_observation_space.shape, 15)  # no sources: the pixels, as before
    without.add(images[0], np.zeros((4, 15)), np.zeros(4))
    assert "obs" in without.state_dict() and "sources" not in without.state_dict()
    old = ReplayBuffer(6, env.single_observation_space.shape, 15)  # a state of before 2026-11-29 still loads
    assert old.load_state_dict(without.state_dict()) == {"regenerated": 0, "inexact": 0}
    assert np.array_equal(old.obs[:4], images[0]) and old.size == 4


def test_lr_decay_schedule():
    assert decayed(1e-4, 1e-2, 0, 5000) == 1e-4
    assert decayed(1e-4, 1e-2, 5000, 5000) == pytest.approx(1e-6)
    assert decayed(1e-4, 1e-2, 2500, 5000) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="critic_loss"):
        DDPGConfig(critic_loss="huber")


def test_actor_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    actor = Actor(**TINY_ACTOR)
    path = save_actor(actor, tmp_path / "a.safetensors", codec=KernelCodec.default(), card={"x": 1})
    loaded = load_actor(path, codec=KernelCodec.default())
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(loaded(x), actor(x))
    with pytest.raises(ActorCheckpointError, match="codec"):
        load_actor(path, codec=KernelCodec.fit("isotropic", n=300, seed=5))
    with pytest.raises(ActorCheckpointError, match="actor_psnr_x4"):
        load_actor(tmp_path / "missing.safetensors")


def test_sigma_head_reads_actions_off_the_isotropic_curve(tmp_path):
    """head='sigma': the action at sigma is the isotropic Gaussian's action (the table is interpolated
    linearly on a 0.01 grid), differentiable in sigma, saved with the weights; no table, no forward."""
    from blindsr_gym.kernels import isotropic_gaussian

    codec = KernelCodec.default()
    torch.manual_seed(0)
    actor = Actor(**TINY_ACTOR, head="sigma", codec=codec)
    sig = torch.tensor([0.2, 1.234, 2.5, 3.171, 4.0], requires_grad=True)
    want = codec.code_to_action(codec.encode(isotropic_gaussian(sig.detach().double().numpy())))
    got = actor.sigma_to_action(sig)
    torch.testing.assert_close(got, want.float(), atol=2e-2, rtol=0)  # the trailing components swing fast
    assert float((got.detach() - want).abs().mean()) < 2e-3
    got[:, 0].sum().backward()
    assert sig.grad is not None and torch.all(torch.isfinite(sig.grad)) and float(sig.grad.abs().sum()) > 0
    x = torch.rand(3, 3, 16, 16)
    s = actor.sigma(x)
    assert s.shape == (3,) and torch.all((s >= 0.2) & (s <= 4.0))
    a = actor(x)
    assert a.shape == (3, 15) and torch.all(a.abs() <= 1)
    path = save_actor(actor, tmp_path / "s.safetensors", codec=codec)
    torch.testing.assert_close(load_actor(path, codec=codec)(x), a)
    with pytest.raises(RuntimeError, match="no action table"):
        Actor(**TINY_ACTOR, head="sigma")(x)
    with pytest.raises(ValueError, match="head must be"):
        Actor(head="mlp")
    with pytest.raises(ValueError, match="needs an actor built with head='sigma'"):
        Actor(**TINY_ACTOR).sigma(x)


def _random_policy_reward(env_id, n, seed=1_000_000, **env_kwargs):
    env = make_vec_env(env_id, n, **env_kwargs)
    rng = np.random.default_rng(0)
    return evaluate_policy(lambda obs: rng.uniform(-1, 1, (len(obs), 15)), env, seed)["reward"]


def test_short_ddpg_run_beats_random(tmp_path):
    cfg = DDPGConfig(env_id="BlindSR-PSNR-v0", env_kwargs=FAKE_ENV, num_envs=16, iterations=30, batch_size=32,
                     actor_lr=1e-3, critic_lr=1e-3, eval_every=15, ckpt_every=15, eval_episodes=32,
                     actor_kwargs=TINY_ACTOR)
    result = train_ddpg(cfg, tmp_path, progress=False)
    random_r = _random_policy_reward("BlindSR-PSNR-v0", 32, **FAKE_ENV)
    # the fake renderer's rewards span ~0.1 dB; random actions lose to the true kernel on average
    assert random_r < 0 < result["eval"]["reward"] and result["eval"]["reward"] > random_r + 0.02, (
        result["eval"], random_r)
    assert result["eval"]["reward_positive_frac"] > 0.6
    actor = load_actor(tmp_path / "actor.safetensors")
    assert (tmp_path / "actor.json").is_file() and count_parameters(actor) < 50_000
    best = json.loads((tmp_path / "actor_best.json").read_text())  # the best validation reward's actor
    assert best["validation"]["reward"] == max(h["reward"] for h in result["history"])
    assert best["training"]["hardware"] and "best" in best["training"]["note"]
    assert list(tmp_path.glob("events.out.tfevents*"))

    # scripts/ddpg_curves.py reads the same run back from TensorBoard: the validation rewards are the card's,
    # the critic's fit is logged once per iteration (an R^2: at most 1), the action drift once per validation
    import importlib.util

    script = Path(__file__).parents[1] / "scripts" / "ddpg_curves.py"
    spec = importlib.util.spec_from_file_location("ddpg_curves", script)
    curves = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curves)
    assert curves.main([str(tmp_path), "--out", str(tmp_path / "curves")]) == 0
    series = json.loads((tmp_path / "curves.json").read_text())["series"][tmp_path.name]
    want = [(h["env_steps"], h["reward"]) for h in result["history"]]
    assert [(s, pytest.approx(r)) for s, r in series["reward"]] == want
    # updates start once the buffer holds a batch of 32, at the second of 30 iterations of 16 episodes
    assert [s for s, _ in series["critic_r2"]] == list(range(32, 481, 16))
    assert all(v <= 1 for _, v in series["critic_r2"])
    assert [s for s, _ in series["width_log_ratio"]] == [h["env_steps"] for h in result["history"]]
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    # --x iterations divides by the card's 16 env steps an iteration (32 with the env's gradient)
    assert curves.main([str(tmp_path), "--x", "iterations", "--out", str(tmp_path / "per_it")]) == 0
    per_it = json.loads((tmp_path / "per_it.json").read_text())["series"][tmp_path.name]
    assert [s for s, _ in per_it["critic_r2"]] == list(range(2, 31))
    assert [s for s, _ in per_it["reward"]] == [h["env_steps"] // 16 for h in result["history"]]
    card = json.loads((tmp_path / "actor.json").read_text())
    card["training"]["actor_gradient"] = "env"
    (tmp_path / "actor.json").write_text(json.dumps(card))
    assert curves.steps_per_iteration(tmp_path) == 32


def test_critic_warmup_holds_the_actor(tmp_path):
    torch.manual_seed(0)
    init = save_actor(Actor(**TINY_ACTOR), tmp_path / "init.safetensors", codec=KernelCodec.default())
    cfg = DDPGConfig(env_id="BlindSR-PSNR-v0", env_kwargs=FAKE_ENV, num_envs=8, iterations=2, batch_size=8,
                     actor_lr=1e-2, eval_every=2, ckpt_every=2, eval_episodes=8, actor_kwargs=TINY_ACTOR,
                     init_actor=str(init), critic_warmup=2)
    train_ddpg(cfg, tmp_path / "run", progress=False)
    before, after = load_actor(init).state_dict(), load_actor(tmp_path / "run" / "actor.safetensors").state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    train_ddpg(DDPGConfig(**{**cfg.__dict__, "critic_warmup": 1}), tmp_path / "run2", progress=False)
    after = load_actor(tmp_path / "run2" / "actor.safetensors").state_dict()
    assert not all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match="critic_warmup"):
        DDPGConfig(iterations=2, critic_warmup=3)
    with pytest.raises(ValueError, match="does not match actor_kwargs: channels=8"):
        train_ddpg(DDPGConfig(**{**cfg.__dict__, "actor_kwargs": {**TINY_ACTOR, "channels": 8}}), tmp_path / "r3",
                   progress=False)


def test_ddpg_fine_tunes_a_sigma_head_actor(tmp_path):
    """--init-actor keeps the checkpoint's own head: a sigma-head actor is trained through its width, so
    every action it takes after DDPG is still an isotropic Gaussian's (read off its table)."""
    codec = KernelCodec.default()
    torch.manual_seed(0)
    init = save_actor(Actor(**TINY_ACTOR, head="sigma", codec=codec), tmp_path / "init.safetensors", codec=codec)
    cfg = DDPGConfig(env_id="BlindSR-PSNR-v0", env_kwargs=FAKE_ENV, num_envs=8, iterations=3, batch_size=8,
                     actor_lr=1e-2, eval_every=3, ckpt_every=3, eval_episodes=8, init_actor=str(init))
    train_ddpg(cfg, tmp_path / "run", progress=False)
    before, after = load_actor(init), load_actor(tmp_path / "run" / "actor.safetensors")
    assert after.head_kind == "sigma"
    x = torch.rand(4, 3, 32, 32)
    assert not torch.equal(before.sigma(x), after.sigma(x))  # trained ...
    torch.testing.assert_close(after(x), after.sigma_to_action(after.sigma(x)))  # ... on the family's curve


def test_actor_feature_critic_reads_through_a_frozen_copy_of_the_actor():
    codec = KernelCodec.default()
    torch.manual_seed(0)
    actor = Actor(**TINY_ACTOR, head="sigma", codec=codec)
    critic = ActorFeatureCritic(actor).train()
    x, a = torch.rand(4, 3, 32, 32), torch.rand(4, 15) * 2 - 1
    torch.testing.assert_close(actor(x), actor.action_from_pooled(actor.pooled(x)))
    f, a0 = critic.encode(x)
    torch.testing.assert_close(a0, actor(x))
    q = critic(x, a)
    torch.testing.assert_close(q, critic.q(torch.cat([f, a0, a, a - a0], 1)).squeeze(1))
    torch.testing.assert_close(critic(x, a, enc=(f, a0)), q)
    q.sum().backward()  # only the MLP learns; the encoder has no gradients and stays in eval mode
    assert all(p.grad is None for p in critic.encoder.parameters()) and not critic.encoder.training
    assert all(p.grad is not None for p in critic.q.parameters())
    with torch.no_grad():  # a copy: training the actor does not move the critic's encoder
        actor.fc[2].bias += 1.0
    assert not torch.allclose(critic.encode(x)[1], actor(x))


def test_ddpg_with_actor_critic_and_sigma_exploration(tmp_path):
    """critic_encoder='actor' + exploration='sigma': every explored action is on the family's curve, the
    critic's encoder stays the initial actor, and the run resumes."""
    codec = KernelCodec.default()
    torch.manual_seed(0)
    init = save_actor(Actor(**TINY_ACTOR, head="sigma", codec=codec), tmp_path / "init.safetensors", codec=codec)
    cfg = DDPGConfig(env_id="BlindSR-PSNR-v0", env_kwargs=FAKE_ENV, num_envs=8, iterations=2, batch_size=8,
                     actor_lr=1e-2, eval_every=2, ckpt_every=2, eval_episodes=8, init_actor=str(init),
                     critic_encoder="actor", exploration="sigma", exploration_noise=0.3, critic_updates=3)
    cfg = replace(cfg, iterations=3, eval_every=1, ckpt_every=1)
    train_ddpg(cfg, tmp_path / "run", progress=False, stop_after=2)
    init.rename(tmp_path / "elsewhere")  # a resume builds the actor from its state: no init file needed
    train_ddpg(cfg, tmp_path / "run", resume=True, progress=False)
    (tmp_path / "elsewhere").rename(init)
    train_ddpg(cfg, tmp_path / "full", progress=False)
    assert weights_digest(load_actor(tmp_path / "run" / "actor.safetensors")) == \
        weights_digest(load_actor(tmp_path / "full" / "actor.safetensors"))  # the resume is the uninterrupted run
    state = torch.load(tmp_path / "run" / "ddpg_state.pt", weights_only=True)
    actions = state["buffer"]["actions"]
    assert len(actions) == 24
    table = load_actor(init).action_table
    p0, d = table[:-1], table[1:] - table[:-1]  # the curve: the table's 380 segments
    t = (((actions[:, None] - p0) * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    dist = (actions[:, None] - p0 - t[..., None] * d).norm(dim=-1).min(dim=1).values
    assert dist.max() < 1e-4, dist.max()  # on the curve (action noise of 0.3 would be ~1 away)
    before = load_actor(init).state_dict()
    enc = {k[len("encoder."):]: v for k, v in state["critic"].items() if k.startswith("encoder.")}
    assert enc.keys() == before.keys() and all(torch.equal(enc[k], before[k]) for k in enc)
    obs = obs_to_tensor(_buffer_images(cfg, state)[:8])  # the buffer keeps the encoder's features
    torch.testing.assert_close(state["buffer"]["features"][:8], load_actor(init).pooled(obs), atol=1e-5, rtol=1e-5)
    after = load_actor(tmp_path / "run" / "actor.safetensors")
    assert not torch.equal(after.fc[2].bias, before["fc.2.bias"])  # the actor itself did learn
    card = json.loads((tmp_path / "run" / "actor.json").read_text())
    assert card["training"]["critic_encoder"] == "actor" and card["training"]["exploration"] == "sigma"
    with pytest.raises(ValueError, match="critic_encoder"):
        train_ddpg(replace(cfg, critic_encoder="cnn"), tmp_path / "run", resume=True, progress=False)


def test_ddpg_rejects_bad_critic_and_exploration_options(tmp_path):
    with pytest.raises(ValueError, match="needs init_actor"):
        DDPGConfig(critic_encoder="actor")
    with pytest.raises(ValueError, match="critic_encoder must be"):
        DDPGConfig(critic_encoder="vit")
    with pytest.raises(ValueError, match="exploration must be"):
        DDPGConfig(exploration="ou")
    cfg = DDPGConfig(env_id="BlindSR-PSNR-v0", env_kwargs=FAKE_ENV, num_envs=8, iterations=1, batch_size=8,
                     eval_episodes=8, exploration="sigma")
    with pytest.raises(ValueError, match="sigma-head actor"):  # the default fc actor has no width to perturb
        train_ddpg(cfg, tmp_path / "run", progress=False)


def test_short_sb3_td3_run_beats_random(tmp_path):
    pytest.importorskip("stable_baselines3")
    from blindsr_gym.agents.sb3 import train_sb3

    result = train_sb3("sb3:td3", "BlindSR-PSNR-v0", steps=640, logdir=tmp_path, num_envs=16, env_kwargs=FAKE_ENV,
                       eval_episodes=32, eval_freq=640, progress=False, learning_starts=64, batch_size=32)
    random_r = _random_policy_reward("BlindSR-PSNR-v0", 32, **FAKE_ENV)
    assert result["steps"] == 640 and result["eval"]["reward"] > random_r + 0.02, (result["eval"], random_r)
    assert (tmp_path / "sb3_model.zip").is_file() and (tmp_path / "sb3_replay_buffer.pkl").is_file()
    # the exported actor is the trained policy: on the same validation episodes it scores the same
    actor = load_actor(tmp_path / "actor.safetensors")
    again = evaluate_policy(torch_policy(actor), make_vec_env("BlindSR-PSNR-v0", 32, **FAKE_ENV), seed=1_000_000)
    assert again["reward"] == pytest.approx(result["eval"]["reward"], abs=1e-5)
    card = json.loads((tmp_path / "actor.json").read_text())
    assert card["training"]["episodes"] == 640 and card["validation"] == result["eval"]


@pytest.mark.parametrize("algo", ["sb3:sac", "sb3:ddpg", "sb3:ppo"])
def test_other_sb3_algorithms_run(tmp_path, algo):
    from blindsr_gym.agents.sb3 import train_sb3

    extra = {"n_steps": 2, "batch_size": 32, "n_epochs": 2} if algo == "sb3:ppo" else {"learning_starts": 32}
    result = train_sb3(algo, "BlindSR-PSNR-v0", steps=96, logdir=tmp_path, num_envs=16, env_kwargs=FAKE_ENV,
                       eval_episodes=16, eval_freq=96, progress=True, **extra)  # the CLI's default
    assert result["steps"] >= 96 and np.isfinite(result["eval"]["reward"])
    steps = [h["env_steps"] for h in result["history"]]
    assert steps == sorted(set(steps)) and result["history"][-1]["reward"] == result["eval"]["reward"]


def test_torch_policy_on_env():
    env = make_vec_env("BlindSR-PSNR-v0", 4, **FAKE_ENV)
    out = evaluate_policy(torch_policy(Actor(**TINY_ACTOR)), env, seed=3)
    assert {"reward", "psnr", "psnr_true_kernel", "action_l1_error", "code_rel_error", "metric_psnr"} <= set(out)


def test_the_critic_fit_is_the_share_of_reward_variance_its_q_explains():
    """losses/critic_r2 = 1 - mean((r - Q)^2) / var(r) on the critic's last batch, by hand: a critic that
    returns the rewards explains all of it, one that returns their mean none."""
    from blindsr_gym.agents.ddpg import DDPGUpdate

    r = np.array([-1.0, 0.5, 2.0, 0.1], dtype=np.float32)

    class Fixed(torch.nn.Module):
        def __init__(self, q):
            super().__init__()
            self.q, self.w = torch.as_tensor(q), torch.nn.Parameter(torch.zeros(()))

        def forward(self, s, a, enc=None):
            return self.q + 0 * self.w

    sample = lambda: (np.zeros((4, 8, 8, 3), np.uint8), np.zeros((4, 15), np.float32), r)  # noqa: E731
    for q, want in ((r, 1.0), (np.full(4, r.mean(), np.float32), 0.0), (r + 0.5, 1 - 0.25 / float(np.var(r)))):
        critic = Fixed(q)
        step = DDPGUpdate(None, critic, None, torch.optim.SGD(critic.parameters(), lr=0.0), "eq10", "cpu")
        assert step.update(sample, 1, train_actor=False)["losses/critic_r2"] == pytest.approx(want, abs=1e-6)


def test_validation_reads_which_way_the_widths_drift():
    """width_log_ratio is the mean log of the read width over the true one: 0 for the true kernels' actions,
    log(1.3) for kernels 30% wider (isotropic Gaussians; the codec reconstructs them to a few 1e-3)."""
    from blindsr_gym.kernels import isotropic_gaussian, isotropic_sigma

    env = make_vec_env("BlindSR-PSNR-v0", 6, **FAKE_ENV)
    codec = env.core.codec
    _, info = env.reset(seed=5)
    widths = isotropic_sigma(codec.decode(torch.as_tensor(info["code_gt"]))).numpy()
    wider = codec.code_to_action(codec.encode(torch.stack([isotropic_gaussian(1.3 * float(w)) for w in widths])))
    for act, want in ((lambda obs: info["action_gt"], 0.0), (lambda obs: wider.numpy(), np.log(1.3))):
        out = evaluate_policy(act, env, seed=5)
        assert out["width_log_ratio"] == pytest.approx(want, abs=0.02), out


def test_shipped_psnr_actor_card_and_estimates_on_builtin_images():
    """The shipped actor_psnr_x4 carries its training and the measured Gaussian8 table; on centre crops of
    the built-in images (never trained on) the widths it reads rise with the true width, and AMNet with its
    action beats bicubic interpolation."""
    from blindsr_gym.agents import _resolve
    from blindsr_gym.data import builtin
    from blindsr_gym.degradation import degrade, imresize
    from blindsr_gym.kernels import isotropic_gaussian
    from blindsr_gym.metrics import psnr
    from blindsr_gym.renderers import load_renderer
    from blindsr_gym.utils import centre_crop, to_tensor

    try:
        path = _resolve("actor_psnr_x4")
    except ActorCheckpointError:
        pytest.skip("actor_psnr_x4 is not shipped in this checkout yet")
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["training"]["iterations"] > 0 and card["training"]["wall_time_s"] > 0
    ev = card["evaluation"]["gaussian8"]
    assert ev["command"].startswith("blindsr-gym evaluate") and "amnet-rl" in ev["command"]
    means = {(r["method"], r["dataset"]): r["psnr"] for r in ev["summary"]}
    assert {d for _, d in means} == {"Set5", "Set14", "BSD100"}
    renderer = load_renderer("amnet_x4")
    actor = load_actor("actor_psnr_x4", codec=renderer.codec)
    widths, gains = [], []
    for i in range(3):
        hr = centre_crop(to_tensor(builtin()[i]), 256)
        for sigma in (1.8, 2.4, 3.0):
            lr = degrade(hr, isotropic_gaussian(sigma), 4)
            with torch.no_grad():
                sr = renderer(lr, renderer.codec.action_to_code(actor(lr)))
                widths.append(float(actor.sigma(lr)[0]) if actor.head_kind == "sigma" else float("nan"))
            gains.append(float(psnr(sr, hr, crop_border=4)[0] - psnr(imresize(lr, 4.0).clamp(0, 1), hr,
                                                                      crop_border=4)[0]))
    widths = torch.tensor(widths).reshape(3, 3)
    # measured (34,000 supervised iterations; `python scripts/builtin_figures.py`), sigma 1.8 / 2.4 / 3.0:
    # astronaut 1.92 / 2.55 / 3.14, chelsea 2.15 / 2.67 / 3.19, coffee 1.31 / 2.09 / 2.80 (mean |relative
    # error| 11%; chelsea's fur reads 19% wide at 1.8); gains over bicubic 1.00 dB at least, mean 3.05 (the
    # true kernel's mean 3.61)
    truth = torch.tensor([1.8, 2.4, 3.0])
    assert torch.all(widths[:, 1:] > widths[:, :-1]), widths
    assert torch.all((widths > 0.7 * truth) & (widths < 1.25 * truth)), widths
    assert (widths / truth - 1).abs().mean() < 0.15, widths
    assert min(gains) > 0.7 and sum(gains) / len(gains) > 2.8, gains
    assert means[("amnet-rl", "Set5")] > 30.5  # shipped: 30.73 (a fixed sigma 2.2 gives 29.22, the truth 30.74)
    # the target, as measured with amnet_robust_x4 (evaluation.gaussian8_robust): within 0.3 dB of the
    # true kernel on every set (shipped: -0.16 / 0.23 / 0.11 dB; with amnet_x4 Set14 is 0.85 dB short)
    robust = {(r["method"], r["dataset"]): r["psnr"] for r in card["evaluation"]["gaussian8_robust"]["summary"]}
    assert "amnet_robust_x4" in card["evaluation"]["gaussian8_robust"]["command"]
    for d in ("Set5", "Set14", "BSD100"):
        assert robust[("gt", d)] - robust[("amnet-rl", d)] < 0.3, (d, robust)
        assert robust[("amnet-rl", d)] > means[("amnet-rl", d)]  # and above AMNet-RL with amnet_x4


# measured by `python scripts/builtin_figures.py` (docs/builtin_figures.json): the mean Eq. 8 reward on the
# built-in crops above the PSNR actor's by 0.33 (actor_niqe_x4), 0.23 (actor_niqe2_x4) and 0.38
# (actor_niqe3_x4), each against +0.08 with amgan_x4; by 0.91 (actor_niqe4_x4) against +0.45 with amgan2_x4
NIQE_ACTOR_MARGIN = {"actor_niqe_x4": 0.25, "actor_niqe2_x4": 0.15, "actor_niqe3_x4": 0.3, "actor_niqe4_x4": 0.7}
#: the AMGAN each NIQE actor was trained against (its card's env_kwargs; the env's default amgan_x4 when absent)
NIQE_ACTOR_RENDERER = {"actor_niqe4_x4": "amgan2_x4"}


@pytest.mark.parametrize("name", sorted(NIQE_ACTOR_MARGIN))
def test_shipped_niqe_actor_card_and_reward_on_builtin_images(name):
    """The NIQE actors (one-step DDPG on NIQE from actor_psnr_x4) carry their training and measured tables; on
    384x384 centre crops of the built-in images (never trained on) they read wider kernels than the truth and
    than the PSNR actor, and AMGAN with their action has a lower NIQE than AMGAN with the true kernel on
    average: the paper's claim, a positive mean reward."""
    from blindsr_gym.agents import _resolve
    from blindsr_gym.data import builtin
    from blindsr_gym.degradation import degrade
    from blindsr_gym.kernels import isotropic_gaussian
    from blindsr_gym.metrics import get_metric
    from blindsr_gym.renderers import load_renderer
    from blindsr_gym.utils import centre_crop, to_tensor

    try:
        path = _resolve(name)
    except ActorCheckpointError:
        pytest.skip(f"{name} is not shipped in this checkout yet")
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["training"]["algorithm"].startswith("one-step DDPG") and card["training"]["env_id"] == "BlindSR-NIQE-v0"
    assert "amgan-rl" in card["evaluation"]["gaussian8"]["command"]
    assert "sigma:0.2,1.3,2.6" in card["evaluation"]["table3"]["command"]
    gan = NIQE_ACTOR_RENDERER.get(name, "amgan_x4")
    assert (card["training"].get("env_kwargs") or {}).get("renderer", "amgan_x4") == gan
    assert f"--gan-renderer {gan}" in card["evaluation"]["gaussian8"]["command"]
    renderer = load_renderer(gan)
    actor, psnr_actor = (load_actor(n, codec=renderer.codec) for n in (name, "actor_psnr_x4"))
    niqe = get_metric("niqe")
    rewards, rewards_psnr, ratio, ratio_psnr = [], [], [], []
    for i in range(3):
        hr = centre_crop(to_tensor(builtin()[i]), 384)
        for sigma in (1.8, 2.4, 3.0):
            k = isotropic_gaussian(sigma)
            lr = degrade(hr, k, 4)
            with torch.no_grad():
                base = float(niqe(renderer(lr, renderer.codec.encode(k)))[0])
                for a, out in ((actor, rewards), (psnr_actor, rewards_psnr)):
                    out.append(base - float(niqe(renderer(lr, renderer.codec.action_to_code(a(lr))))[0]))  # Eq. 8
                ratio.append(float(actor.sigma(lr)[0]) / sigma)
                ratio_psnr.append(float(psnr_actor.sigma(lr)[0]) / sigma)
    # measured (`python scripts/builtin_figures.py`): mean rewards +0.41 (actor_niqe_x4, 7 of 9 positive),
    # +0.31 (actor_niqe2_x4, 6 of 9) and +0.46 (actor_niqe3_x4, 7 of 9); the 34,000-iteration actor_psnr_x4's
    # +0.08. Widths 1.17, 1.15 and 1.19 of the truth on average, the PSNR actor's 1.02 (the ratios' sums differ
    # by 1.35, 1.18 and 1.53). With amgan2_x4: actor_niqe4_x4 +1.35 (9 of 9), actor_psnr_x4 +0.45; widths 1.25
    # against 1.02 (sums differ by 2.10).
    assert sum(ratio) / len(ratio) > 1.05 and sum(ratio) > sum(ratio_psnr) + 0.7, (ratio, ratio_psnr)
    assert sum(rewards) / len(rewards) > 0.2, rewards
    assert sum(rewards) / len(rewards) > sum(rewards_psnr) / len(rewards_psnr) + NIQE_ACTOR_MARGIN[name], (
        rewards, rewards_psnr)


def test_self_ensemble_averages_the_eight_views_and_is_invariant_to_them():
    from blindsr_gym.agents import SelfEnsemble

    torch.manual_seed(0)
    actor = Actor(head="sigma", num_blocks=1, codec=KernelCodec.default()).eval()
    ens = SelfEnsemble(actor)
    lr = torch.rand(2, 3, 12, 20)  # not square: the rotated views have another shape
    views = [torch.rot90(x, r, (-2, -1)) for x in (lr, lr.flip(-1)) for r in range(4)]
    with torch.no_grad():
        expected = torch.stack([actor.sigma(v) for v in views]).mean(0)
        torch.testing.assert_close(ens.sigma(lr), expected, rtol=1e-5, atol=1e-6)
        # the views of a rotated or flipped image are the same eight
        torch.testing.assert_close(ens.sigma(torch.rot90(lr, 1, (-2, -1))), ens.sigma(lr), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ens.sigma(lr.flip(-2)), ens.sigma(lr), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ens(lr), actor.sigma_to_action(expected), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(actor.sigma(views[1]), actor.sigma(lr))  # the actor alone is not invariant
    with pytest.raises(ValueError, match="sigma-head"):
        SelfEnsemble(Actor(num_blocks=1))
    with pytest.raises(ValueError, match="lr must be"):
        ens.sigma(torch.rand(3, 12, 20))


def _tb_tags(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = {"images": set(), "histograms": set()}
    for events in Path(logdir).rglob("events.out.tfevents*"):
        acc = EventAccumulator(str(events), size_guidance={"images": 0, "histograms": 0})
        acc.Reload()
        for kind in tags:
            tags[kind] |= set(acc.Tags().get(kind, []))
    return tags


def test_ddpg_and_sb3_runs_write_the_same_pictures_to_tensorboard(tmp_path):
    from blindsr_gym.agents.sb3 import train_sb3

    cfg = DDPGConfig(env_kwargs=FAKE_ENV, num_envs=4, iterations=2, batch_size=4, eval_every=2, ckpt_every=2,
                     eval_episodes=4, actor_kwargs=TINY_ACTOR)
    train_ddpg(cfg, tmp_path / "ddpg", progress=False)
    train_sb3("sb3:td3", "BlindSR-PSNR-v0", 8, tmp_path / "td3", num_envs=4, env_kwargs=FAKE_ENV, eval_episodes=4,
              device="cpu", progress=False, learning_starts=4, buffer_size=64, batch_size=4)
    want = {"images": {"eval/panels"}, "histograms": {"eval/actions", "eval/rewards"}}
    for run in ("ddpg", "td3"):
        tags = _tb_tags(tmp_path / run)
        assert want["images"] <= tags["images"] and want["histograms"] <= tags["histograms"], (run, tags)


def test_ddpg_writes_the_panels_at_about_ten_validations_and_the_figures_at_every_one(tmp_path):
    """A run validated at every one of its 25 iterations writes its panels (over a megabyte each at the paper's
    crops) at every second validation, and at the last, but its figures and histograms at all 25."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = DDPGConfig(env_kwargs=FAKE_ENV, num_envs=2, iterations=25, batch_size=2, eval_every=1, ckpt_every=25,
                     eval_episodes=2, actor_kwargs=TINY_ACTOR)
    train_ddpg(cfg, tmp_path / "run", progress=False)
    acc = EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    acc.Reload()
    assert [e.step // 2 for e in acc.Images("eval/panels")] == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25]
    assert len(acc.Histograms("eval/rewards")) == len(acc.Scalars("eval/reward")) == 25


def test_train_cli_ends_with_a_readable_summary(tmp_path, capsys):
    from blindsr_gym.cli import main

    args = ["train", "--algo", "ddpg", "--steps", "8", "--num-envs", "4", "--batch-size", "4", "--renderer",
            "bicubic", "--lr-size", "32", "--eval-episodes", "4", "--device", "cpu", "--no-progress"]
    assert main([*args, "--logdir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "blindsr-gym train: ddpg, 8 env steps" in out and "actor.safetensors" in out
    assert "best validation: reward" in out and str(tmp_path / "a") in out
    assert main([*args, "--logdir", str(tmp_path / "b"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["iterations"] == 2 and result["steps"] == 8
    # a run stopped after its last validation reports the steps it trained, not the validation's
    from blindsr_gym.agents.train import summary

    stopped = {"steps": 60096, "wall_s": 1.0, "history": [{"env_steps": 57600, "reward": -0.5}]}
    assert "ddpg, 60096 env steps in" in summary(stopped, "ddpg", tmp_path)


def _table_sigma(actor, actions: torch.Tensor) -> torch.Tensor:
    """The widths of actions on a sigma-head actor's curve: the inverse of ``sigma_to_action`` (projection
    onto the table's segments)."""
    table = actor.action_table
    p0, d = table[:-1], table[1:] - table[:-1]
    t = (((actions[:, None] - p0) * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    dist = (actions[:, None] - p0 - t[..., None] * d).norm(dim=-1)
    i = dist.argmin(dim=1)
    lo, hi = actor.config["sigma_min"], actor.config["sigma_max"]
    return lo + (hi - lo) * (i + t[torch.arange(len(i)), i]) / (len(table) - 1)


def test_the_seed_alone_sets_the_actor_feature_critics_first_weights(tmp_path):
    """The critic on a frozen actor gets its MLP's first weights from the run's seed, not from whatever the
    process drew before (until 2026-11-29 every --seed of a CLI run drew the same ones)."""
    codec = KernelCodec.default()
    torch.manual_seed(0)
    init = save_actor(Actor(**TINY_ACTOR, head="sigma", codec=codec), tmp_path / "init.safetensors", codec=codec)
    cfg = DDPGConfig(env_id="BlindSR-PSNR-v0", env_kwargs=FAKE_ENV, num_envs=4, iterations=1, batch_size=4,
                     eval_every=1, ckpt_every=1, eval_episodes=4, init_actor=str(init), critic_encoder="actor",
                     exploration="sigma")

    def first_weights(name, seed, process_seed):
        torch.manual_seed(process_seed)
        train_ddpg(replace(cfg, seed=seed, critic_lr=1e-30), tmp_path / name, progress=False)
        return torch.load(tmp_path / name / "ddpg_state.pt", weights_only=True)["critic"]["q.0.weight"]

    a = first_weights("a", 0, process_seed=1)
    assert torch.equal(a, first_weights("b", 0, process_seed=2))
    assert not torch.allclose(a, first_weights("c", 1, process_seed=1), atol=1e-3)


def test_ddpg_env_slope_gradient_plays_each_episode_at_two_widths(tmp_path):
    """actor_gradient='env': each episode at sigma * exp(+u) and sigma * exp(-u), and the actor's first Adam
    step goes against the sign of the gradient of -mean(slope * log sigma), with the slope recomputed here
    from the buffer: (r+ - r-) u / (2 noise^2)."""
    codec = KernelCodec.default()
    torch.manual_seed(0)
    init = save_actor(Actor(**TINY_ACTOR, head="sigma", codec=codec), tmp_path / "init.safetensors", codec=codec)
    cfg = DDPGConfig(env_id="BlindSR-PSNR-v0", env_kwargs=FAKE_ENV, num_envs=8, iterations=1, batch_size=8,
                     actor_lr=1e-3, eval_every=1, ckpt_every=1, eval_episodes=8, init_actor=str(init),
                     critic_encoder="actor", exploration="sigma", exploration_noise=0.3, actor_gradient="env")
    train_ddpg(cfg, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "ddpg_state.pt", weights_only=True)
    buf = state["buffer"]
    sources = json.loads(buf["sources"])
    assert len(buf["rewards"]) == 16 and sources[:8] == sources[8:]  # the same episodes twice
    actor0 = load_actor(init)
    x = obs_to_tensor(_buffer_images(cfg, state)[:8])
    with torch.no_grad():
        log_s0 = actor0.sigma(x).log()
    u_plus, u_minus = (_table_sigma(actor0, buf["actions"][s]).log() - log_s0 for s in (slice(0, 8), slice(8, 16)))
    torch.testing.assert_close(u_minus, -u_plus, atol=2e-3, rtol=0)  # antithetic widths
    assert u_plus.abs().max() > 0.05
    slope = (buf["rewards"][:8] - buf["rewards"][8:]) * u_plus / (2 * 0.3 ** 2)
    actor0.requires_grad_(True)
    (-(slope * actor0.sigma(x).log()).mean()).backward()
    after = load_actor(tmp_path / "run" / "actor.safetensors").state_dict()
    moved = 0
    for name, p in actor0.named_parameters():
        big = p.grad.abs() > 1e-4 * p.grad.abs().max()
        step = after[name] - p.detach()
        assert torch.equal(torch.sign(step[big]), -torch.sign(p.grad[big])), name
        moved += int(big.sum())
    assert moved > 100
    card = json.loads((tmp_path / "run" / "actor.json").read_text())
    assert card["training"]["actor_gradient"] == "env" and card["training"]["episodes"] == 16
    # the run validated its starting point first: the pre-trained actor's own score on the same episodes
    start = evaluate_policy(torch_policy(load_actor(init)), make_vec_env(cfg.env_id, 8, **FAKE_ENV), cfg.eval_seed)
    assert [h["env_steps"] for h in card["validation_history"]] == [0, 16]
    assert card["validation_history"][0]["reward"] == pytest.approx(start["reward"], abs=1e-9)
    assert "env's slope" in card["training"]["algorithm"]
    with pytest.raises(ValueError, match="exploration='sigma'"):
        DDPGConfig(init_actor="x", exploration="action", actor_gradient="env")
    with pytest.raises(ValueError, match="actor_gradient must be"):
        DDPGConfig(actor_gradient="es")
    from blindsr_gym.cli import main  # --steps counts env steps: 2 x num_envs per iteration here

    assert main(["train", "--algo", "ddpg", "--steps", "32", "--num-envs", "4", "--batch-size", "4", "--renderer",
                 "bicubic", "--lr-size", "32", "--eval-episodes", "4", "--device", "cpu", "--no-progress", "--json",
                 "--init-actor", str(init), "--exploration", "sigma", "--actor-gradient", "env",
                 "--logdir", str(tmp_path / "cli")]) == 0
    card = json.loads((tmp_path / "cli" / "actor.json").read_text())["training"]
    assert card["iterations"] == 4 and card["episodes"] == 32
