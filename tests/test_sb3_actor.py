"""SB3 policies exported as actors: the file rebuilds the policy's deterministic actions, windows of a larger
image are averaged, the CLI accepts the file, and the loader names only trusted classes."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import blindsr_gym
from blindsr_gym.agents import ActorCheckpointError, load_actor
from blindsr_gym.agents.sb3_actor import SB3Actor, export_actor

gym.register_envs(blindsr_gym)
FAKE_ENV = {"renderer": "bicubic", "lr_size": 48, "device": "cpu"}


@pytest.fixture(scope="module")
def env():
    return gym.make("BlindSR-PSNR-v0", **FAKE_ENV)


def _plain(algo, env):
    import stable_baselines3 as sb3

    kw = {"n_steps": 16, "batch_size": 16} if algo == "PPO" else {"buffer_size": 200, "learning_starts": 8}
    return getattr(sb3, algo)("CnnPolicy", env, gamma=0.0, seed=0, verbose=0, **kw).learn(24)


@pytest.mark.parametrize("algo", ["TD3", "SAC", "PPO"])
def test_exported_plain_sb3_policy_acts_as_the_model_predicts(tmp_path, env, algo):
    model = _plain(algo, env)
    path = export_actor(model, tmp_path / "actor.safetensors")
    actor = load_actor(path, codec=env.unwrapped.core.renderer.codec)
    assert isinstance(actor, SB3Actor) and actor.window == (48, 48)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        want = model.predict(obs.transpose(2, 0, 1), deterministic=True)[0]
        got = actor(torch.as_tensor(obs).permute(2, 0, 1)[None].float() / 255)[0].numpy()
        assert np.abs(got - want).max() < 1e-5
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["algo"] == algo and card["env_steps"] == model.num_timesteps and len(card["sha256"]) == 64
    assert card["codec_hash"] == env.unwrapped.core.renderer.codec.hash
    # only the deterministic action's tensors travel: no critic, no target networks
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        assert not [k for k in f.keys() if "critic" in k or "target" in k or "value" in k]


def test_larger_images_average_the_windows_actions(tmp_path, env):
    actor = load_actor(export_actor(_plain("TD3", env), tmp_path / "a.safetensors"))
    x = torch.rand(2, 3, 50, 100, generator=torch.Generator().manual_seed(1))
    # windows: rows at 0 and 2 (two cover 50), columns at 0, 26, 52 (three cover 100)
    assert actor.windows(50, 100) == [(t, s) for t in (0, 2) for s in (0, 26, 52)]
    want = torch.stack([actor(x[:, :, t:t + 48, s:s + 48]) for t, s in actor.windows(50, 100)]).mean(0)
    assert torch.allclose(actor(x), want, atol=1e-6)
    assert len(actor.windows(500, 500)) == 16  # at most four per side
    with pytest.raises(blindsr_gym.errors.InputError, match="48x48 LR windows"):
        actor(torch.rand(1, 3, 40, 60))


def test_upscale_and_evaluate_accept_an_exported_sb3_actor(tmp_path):
    import stable_baselines3 as sb3

    from blindsr_gym.evaluate import make_method
    from blindsr_gym.fileio import write_image
    from blindsr_gym.upscale import upscale_files

    renderer = "amnet_x4"
    env = gym.make("BlindSR-PSNR-v0", renderer=renderer, lr_size=48, device="cpu")
    path = export_actor(sb3.TD3("CnnPolicy", env, buffer_size=100, gamma=0.0, seed=0), tmp_path / "td3.safetensors")
    write_image(tmp_path / "in.png", np.random.default_rng(0).integers(0, 256, (56, 64, 3), dtype=np.uint8))
    reports = upscale_files([tmp_path / "in.png"], tmp_path / "out", renderer=renderer, actor=str(path),
                            progress=False)
    assert reports[0]["output"].endswith("in_x4.png") and reports[0]["sigma_estimate"] > 0
    method = make_method("amnet-rl", scale=4, renderer=renderer, actor=str(path))
    sr, k = method.fn(torch.rand(1, 3, 48, 48), None)
    assert sr.shape == (1, 3, 192, 192) and torch.allclose(k.sum(), torch.tensor(1.0), atol=1e-4)


def test_loading_names_only_trusted_classes(tmp_path, env):
    from safetensors.torch import load_file, save_file

    path = export_actor(_plain("TD3", env), tmp_path / "a.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    config = json.loads(meta["config"])
    config["policy_class"] = "os:system"
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(str(path)), str(bad), metadata={**meta, "config": json.dumps(config)})
    with pytest.raises(ActorCheckpointError, match="outside the packages"):
        load_actor(bad)


def test_export_refuses_what_it_cannot_rebuild(tmp_path, env):
    from types import SimpleNamespace

    from blindsr_gym.errors import InputError

    model = _plain("TD3", env)
    with pytest.raises(InputError, match="the codec has 10 components"):
        export_actor(model, tmp_path / "a.safetensors", codec=SimpleNamespace(length=10, hash="x"))
    with pytest.raises(InputError, match="cannot export a Linear"):
        export_actor(torch.nn.Linear(2, 2), tmp_path / "b.safetensors")
    assert not list(tmp_path.iterdir())  # nothing half-written
