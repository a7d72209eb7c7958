"""The environments: Gymnasium's checks, Eq. 8, determinism, pickling, errors, the vector env."""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env, data_equivalence
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import blindsr_gym
from blindsr_gym.envs import BlindSREnv, BlindSRVectorEnv
from blindsr_gym.errors import InputError
from blindsr_gym.kernels import isotropic_gaussian
from blindsr_gym.metrics import register_metric
from blindsr_gym.renderers import SHIPPED, _resolve

FAKE = {"renderer": "bicubic", "device": "cpu"}


def shipped_available(name):
    try:
        _resolve(name)
        return True
    except ValueError:
        return False


def _check_no_warnings(make):
    """Gymnasium's tests/envs/test_envs.py: check_env must not emit any warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = make()
        check_env(env.unwrapped)
        env.close()
    assert not [str(w.message) for w in caught], [str(w.message) for w in caught]


@pytest.mark.parametrize("env_id", sorted(blindsr_gym.ENV_IDS))
def test_registered_ids_pass_check_env_with_the_fake_renderer(env_id):
    _check_no_warnings(lambda: gym.make(f"blindsr_gym:{env_id}", **FAKE))


@pytest.mark.parametrize("env_id", sorted(blindsr_gym.ENV_IDS))
def test_registered_ids_pass_check_env_with_shipped_renderers(env_id):
    renderer = blindsr_gym.ENV_IDS[env_id].get("renderer", "amnet_x4")
    if not shipped_available(renderer):
        pytest.skip(f"shipped renderer {renderer!r} is not in this checkout yet")
    _check_no_warnings(lambda: gym.make(f"blindsr_gym:{env_id}", device="cpu"))


def test_registration_is_idempotent():
    before = {k: v for k, v in gym.registry.items() if k.startswith("BlindSR")}
    blindsr_gym.register_envs()
    assert {k: v for k, v in gym.registry.items() if k.startswith("BlindSR")} == before
    assert set(before) == set(blindsr_gym.ENV_IDS) and all(SHIPPED)


@pytest.fixture(scope="module")
def env():
    return BlindSREnv(metric="niqe", **FAKE)


def test_spaces_and_one_step_episode(env):
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    assert env.action_space.shape == (15,) and env.action_space.dtype == np.float32
    assert set(info) >= {"code_gt", "action_gt", "baseline", "image_index", "sigma"}
    assert 0.2 <= info["sigma"] <= 4.0
    obs2, r, term, trunc, info2 = env.step(env.action_space.sample())
    assert term is True and trunc is False and isinstance(r, float)
    np.testing.assert_array_equal(obs2, obs)
    with pytest.raises(RuntimeError, match="one step"):
        env.step(env.action_space.sample())


def test_step_before_reset():
    e = BlindSREnv(metric="psnr", **FAKE)
    with pytest.raises(RuntimeError, match="reset"):
        e.step(np.zeros(15, np.float32))


def test_reward_is_eq8_recomputed_from_info(env):
    env.reset(seed=1)
    _, r, _, _, info = env.step(np.full(15, 0.3, np.float32))
    # NIQE: lower is better, zeta = -1
    assert r == pytest.approx(-(info["metric"]["niqe"] - info["baseline"]["niqe"]), abs=1e-12)
    # the true kernel's own action scores the baseline: reward 0
    _, info = env.reset(seed=1)
    _, r_gt, _, _, info_gt = env.step(info["action_gt"])
    assert abs(r_gt) < 1e-6 and not info_gt["action_clipped"]


def test_psnr_reward_sign_and_true_kernel_beats_wrong_kernel():
    e = BlindSREnv(metric="psnr", renderer="bicubic", device="cpu")
    _, info = e.reset(seed=2, options={"sigma": 1.0})
    _, r, _, _, info2 = e.step(info["action_gt"])
    assert r == pytest.approx(info2["metric"]["psnr"] - info2["baseline"]["psnr"], abs=1e-12)
    assert info2["psnr"] == pytest.approx(info2["metric"]["psnr"]) and info2["psnr_gt"] == pytest.approx(
        info2["baseline"]["psnr"])


def test_same_seed_same_episodes_and_pickle(env):
    a = np.linspace(-0.5, 0.5, 15, dtype=np.float32)
    o1, i1 = env.reset(seed=7)
    _, r1, _, _, _ = env.step(a)
    o2, i2 = env.reset(seed=7)
    clone = pickle.loads(pickle.dumps(env))
    _, r2, _, _, _ = env.step(a)
    _, r3, _, _, _ = clone.step(a)
    np.testing.assert_array_equal(o1, o2)
    assert i1["sigma"] == i2["sigma"] and r1 == r2 == r3
    o3, _ = env.reset(seed=8)
    assert not np.array_equal(o1, o3)


def test_reset_options_fix_image_kernel_sigma(env):
    _, info = env.reset(seed=0, options={"image_index": 2, "sigma": 1.3})
    assert info["image_index"] == 2 and info["sigma"] == 1.3
    k = isotropic_gaussian(2.0).numpy()
    _, info_k = env.reset(seed=0, options={"kernel": k})
    torch.testing.assert_close(torch.as_tensor(info_k["code_gt"]), env.codec.encode(torch.as_tensor(k)[None])[0])
    for bad, match in [({"sigma": -1}, "sigma"), ({"kernel": np.ones((5, 5))}, "21x21"),
                       ({"kernel": np.ones((21, 21))}, "sum to 1"), ({"image_index": 99}, "image_index"),
                       ({"sigma": 1.0, "kernel": k}, "not both"), ({"blur": 1}, "unknown reset option")]:
        with pytest.raises(ValueError, match=match):
            env.reset(options=bad)


def test_bad_actions(env):
    env.reset(seed=0)
    for bad, match in [(np.zeros(14), "shape"), (np.full(15, np.nan), "NaN"), ("abc", "action"),
                       (np.full(15, np.inf), "NaN or inf")]:
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    _, r, _, _, info = env.step(np.full(15, 3.0))
    assert info["action_clipped"] is True
    env.reset(seed=0)
    _, r1, _, _, _ = env.step(np.ones(15))
    assert r == r1  # clipped to 1


def test_custom_metric_and_composite_reward():
    def brightness(sr, hr=None):
        return sr.mean(dim=(1, 2, 3))

    register_metric("brightness_test", brightness, lower_better=False, overwrite=True)
    e = BlindSREnv(metric="brightness_test", **FAKE)
    e.reset(seed=0)
    _, r, _, _, info = e.step(np.zeros(15, np.float32))
    assert r == pytest.approx(info["metric"]["brightness_test"] - info["baseline"]["brightness_test"])

    comp = BlindSREnv(metric={"niqe": 1.0, "psnr": 0.1}, **FAKE)
    comp.reset(seed=0)
    _, r, _, _, info = comp.step(np.full(15, -0.4, np.float32))
    m, b = info["metric"], info["baseline"]
    expected = -1.0 * (m["niqe"] - b["niqe"]) / abs(b["niqe"]) + 0.1 * (m["psnr"] - b["psnr"]) / abs(b["psnr"])
    assert r == pytest.approx(expected, rel=1e-6)  # the normaliser has an eps of 1e-8
    assert info["reward_name"] == "1*niqe+0.1*psnr"

    absolute = BlindSREnv(metric="psnr", reward_mode="absolute", **FAKE)
    absolute.reset(seed=0)
    _, r, _, _, info = absolute.step(np.zeros(15, np.float32))
    assert r == pytest.approx(info["metric"]["psnr"])

    with pytest.raises(TypeError, match="register"):
        BlindSREnv(metric=brightness, **FAKE)
    with pytest.raises(KeyError, match="did you mean"):
        BlindSREnv(metric="niqee", **FAKE)
    with pytest.raises(ValueError, match="reward_mode"):
        BlindSREnv(metric="psnr", reward_mode="delta", **FAKE)


def test_real_lr_input_needs_no_reference_absolute(tmp_path, builtin_images):
    import cv2

    for name, img in zip(builtin_images.names[:2], builtin_images, strict=False):
        cv2.imwrite(str(tmp_path / f"{name}.png"), cv2.cvtColor(img[:100, :100], cv2.COLOR_RGB2BGR))
    with pytest.raises(ValueError, match="HR"):
        BlindSREnv(metric="psnr", reward_mode="absolute", lr_dataset=tmp_path, **FAKE)
    with pytest.raises(ValueError, match="absolute"):
        BlindSREnv(metric="niqe", lr_dataset=tmp_path, **FAKE)
    e = BlindSREnv(metric="niqe", reward_mode="absolute", lr_dataset=tmp_path, **FAKE)
    obs, info = e.reset(seed=0)
    assert obs.shape == (64, 64, 3) and "code_gt" not in info
    _, r, _, _, info = e.step(np.zeros(15, np.float32))
    assert r == pytest.approx(-info["metric"]["niqe"]) and "psnr" not in info


def test_construction_errors():
    with pytest.raises(ValueError, match="48x48|192"):
        BlindSREnv(metric="niqe", lr_size=32, **FAKE)
    with pytest.raises(ValueError, match="scale"):
        BlindSREnv(metric="psnr", scale=2, **FAKE)
    with pytest.raises(ValueError, match="render_mode"):
        BlindSREnv(metric="psnr", render_mode="human", **FAKE)
    with pytest.raises(ValueError, match="not found"):
        BlindSREnv(metric="psnr", renderer="no_such_renderer", device="cpu")
    with pytest.raises(ValueError, match="at least"):
        BlindSREnv(metric="psnr", lr_size=4000, **FAKE)


def test_render_panel():
    e = BlindSREnv(metric="psnr", render_mode="rgb_array", **FAKE)
    e.reset(seed=0)
    before = e.render()
    e.step(np.zeros(15, np.float32))
    after = e.render()
    assert before.shape == after.shape == (256, 1024, 3) and before.dtype == np.uint8
    assert np.all(before[:, 256:512] == 128) and not np.all(after[:, 256:512] == 128)  # the action's tile
    np.testing.assert_array_equal(before[:, 512:], after[:, 512:])


# ------------------------------------------------------------------------------------------------
# vector env
# ------------------------------------------------------------------------------------------------


def test_make_vec_gives_the_batched_env():
    venv = gym.make_vec("blindsr_gym:BlindSR-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        metric="psnr", **FAKE)
    assert isinstance(venv.unwrapped, BlindSRVectorEnv) and venv.num_envs == 3
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, info = venv.reset(seed=0)
    assert venv.observation_space.contains(obs) and obs.shape == (3, 64, 64, 3)


@pytest.mark.parametrize("metric,tol", [("psnr", 1e-4), ("niqe", 5e-3)])
def test_vector_env_matches_single_envs_and_sync_vector_env(metric, tol):
    n = 4
    venv = BlindSRVectorEnv(num_envs=n, metric=metric, **FAKE)
    sync = SyncVectorEnv([lambda: BlindSREnv(metric=metric, **FAKE) for _ in range(n)],
                         autoreset_mode=AutoresetMode.SAME_STEP)
    rng = np.random.default_rng(0)
    ob_v, info_v = venv.reset(seed=10)
    ob_s, info_s = sync.reset(seed=10)
    np.testing.assert_array_equal(ob_v, ob_s)
    assert set(info_v) == set(info_s)
    for _ in range(2):  # the second step runs on autoreset episodes
        a = rng.uniform(-1, 1, (n, 15)).astype(np.float32)
        ob_v, r_v, te_v, tr_v, info_v = venv.step(a)
        ob_s, r_s, te_s, tr_s, info_s = sync.step(a)
        np.testing.assert_array_equal(ob_v, ob_s)  # next episodes' LR: identical draws
        np.testing.assert_allclose(r_v, r_s, atol=tol)  # batched vs single pass: float differences
        assert r_v.dtype == np.float64 and r_v.shape == (n,)
        assert te_v.all() and te_s.all() and not tr_v.any()
        assert set(info_v) == set(info_s) and set(info_v["final_info"]) == set(info_s["final_info"])
        for i in range(n):
            np.testing.assert_array_equal(info_v["final_obs"][i], info_s["final_obs"][i])
        np.testing.assert_array_equal(info_v["final_info"]["sigma"], info_s["final_info"]["sigma"])
        for k in ("metric", "baseline"):
            np.testing.assert_allclose(info_v["final_info"][k][metric], info_s["final_info"][k][metric], atol=tol)
    venv.close()
    sync.close()


def test_vector_env_api_checks():
    venv = BlindSRVectorEnv(num_envs=3, metric="psnr", render_mode="rgb_array", **FAKE)
    o1, i1 = venv.reset(seed=5)
    a = venv.action_space.sample()
    s1 = venv.step(a)
    o2, i2 = venv.reset(seed=5)
    s2 = venv.step(a)
    assert data_equivalence(o1, o2) and data_equivalence(s1, s2)  # seeded determinism
    assert not np.shares_memory(s1[0], s2[0])
    assert venv.observation_space.contains(s1[0]) and s1[1].shape == (3,)
    assert all(i1["_image_index"]) and all(s1[4]["_final_info"])
    frames = venv.render()
    assert len(frames) == 3 and frames[0].shape == (256, 1024, 3)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((2, 15), np.float32))
    with pytest.raises(ValueError, match="seeds"):
        venv.reset(seed=[1, 2])
    _, _, _, _, info = venv.step(np.full((3, 15), 2.0, np.float32))
    assert info["final_info"]["action_clipped"].all()


def test_restored_episodes_are_the_current_ones_and_the_steps_after_them_too():
    """A trainer stopped between two resets keeps ``episode_state()``; a fresh env given it draws the same
    episodes and then the same next ones (the generators go on as after the original draw)."""
    import json

    venv = BlindSRVectorEnv(num_envs=3, metric="psnr", **FAKE)
    with pytest.raises(RuntimeError, match="reset"):
        venv.episode_state()
    venv.reset(seed=11)
    rng = np.random.default_rng(0)
    venv.step(rng.uniform(-1, 1, (3, 15)).astype(np.float32))  # the state is taken after an autoreset
    state = json.loads(json.dumps(venv.episode_state()))  # as a checkpoint stores it
    obs, info = venv._obs.copy(), venv._reset_infos()
    a, b = (rng.uniform(-1, 1, (3, 15)).astype(np.float32) for _ in range(2))
    steps = [venv.step(a), venv.step(b)]
    other = BlindSRVectorEnv(num_envs=3, metric="psnr", **FAKE)  # never reset: the state alone suffices
    obs2, _ = other.restore_episodes(state)
    assert np.array_equal(obs, obs2) and data_equivalence(info, other._reset_infos())
    assert data_equivalence(steps, [other.step(a), other.step(b)])
    with pytest.raises(ValueError, match="3 generators"):
        other.restore_episodes({"generators": state["generators"][:2]})


def test_episode_sources_draw_the_observations_again_redrawn_episodes_too(tmp_path, builtin_images):
    """``episode_sources()`` + ``observations()`` give back the current observations without a render, for
    episodes that NIQE's undefined baseline on a flat crop made the env draw again (their source is the state
    before the last draw), after an autoreset, and in another env never reset."""
    from gymnasium.utils import seeding
    from PIL import Image

    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(tmp_path / "flat.png")  # NIQE is NaN there
    Image.fromarray(builtin_images[0]).save(tmp_path / "photo.png")
    kw = dict(metric="niqe", lr_size=48, dataset=str(tmp_path), **FAKE)
    venv = BlindSRVectorEnv(num_envs=8, **kw)
    with pytest.raises(RuntimeError, match="reset"):
        venv.episode_sources()
    obs, info = venv.reset(seed=0)
    first_draws = [seeding.np_random(i)[0].bit_generator.state for i in range(8)]
    redrawn = [s != f for s, f in zip(venv.episode_sources(), first_draws, strict=True)]
    assert any(redrawn) and not all(redrawn)  # some episodes fell on the flat image first
    assert all(info["image_index"] == 1)  # ... and none stayed there
    other = BlindSRVectorEnv(num_envs=8, **kw)
    assert np.array_equal(other.observations(venv.episode_sources()), obs)
    obs, *_ = venv.step(venv.action_space.sample())
    assert np.array_equal(other.observations(venv.episode_sources()), obs)


def test_one_env_config_builds_both_envs_and_unknown_arguments_are_named():
    from dataclasses import replace

    from blindsr_gym.envs import EnvConfig
    from blindsr_gym.errors import InputTypeError

    cfg = EnvConfig(metric="psnr", **FAKE)
    single, same = BlindSREnv(cfg), BlindSREnv(metric="psnr", **FAKE)
    assert single.core.config == same.core.config == cfg
    obs_a, _ = single.reset(seed=3)
    obs_b, _ = same.reset(seed=3)
    assert np.array_equal(obs_a, obs_b)
    venv = BlindSRVectorEnv(num_envs=2, config=cfg, lr_size=32)  # keywords override the config's fields
    assert venv.core.config == replace(cfg, lr_size=32) and venv.single_observation_space.shape == (32, 32, 3)
    with pytest.raises(InputTypeError, match="unknown environment argument.*lr_sise.*lr_size"):
        BlindSREnv(lr_sise=32, **FAKE)


@pytest.mark.parametrize("family", ["isotropic", "anisotropic", "dan_setting2"])
def test_a_batch_of_draws_equals_the_draws_one_by_one(family):
    """draw_all makes the family's kernels of all episodes in one call; each episode must still be what its
    own generator gives drawn alone (index, window, kernel bit for bit, noise), in the generators' order."""
    from blindsr_gym.envs.core import EnvCore

    core = EnvCore(kernel_family=family, noise=3.0, **FAKE)
    batch = core.draw_all([np.random.default_rng(s) for s in range(8)])
    for s, ep in enumerate(batch):
        alone = core.draw(np.random.default_rng(s))
        assert (ep.image_index, ep.top, ep.left, ep.params) == (alone.image_index, alone.top, alone.left,
                                                                alone.params)
        assert torch.equal(ep.kernel, alone.kernel) and ep.family_params is None
        np.testing.assert_array_equal(ep.noise_draw, alone.noise_draw)
        assert (ep.taps is None) == (family != "isotropic") and (ep.taps is None or np.array_equal(ep.taps, alone.taps))
    kernels = torch.stack([ep.kernel for ep in batch])
    assert len({tuple(k.flatten()[:50].tolist()) for k in kernels}) == 8  # eight different kernels
    torch.testing.assert_close(kernels.sum(dim=(-1, -2)), torch.ones(8))


def test_cuda_graphs_is_a_bool_and_changes_nothing_off_a_gpu():
    """cuda_graphs only changes how a GPU launches the renders: on the CPU the env is the same env."""
    with pytest.raises(InputError, match="cuda_graphs"):
        BlindSRVectorEnv(num_envs=2, cuda_graphs="yes", **FAKE)
    envs = [BlindSRVectorEnv(num_envs=2, cuda_graphs=g, **FAKE) for g in (False, True)]
    assert not envs[1].core.cuda_graphs  # no GPU here: off
    obs = [e.reset(seed=4)[0] for e in envs]
    np.testing.assert_array_equal(obs[0], obs[1])
    a = np.random.default_rng(0).uniform(-1, 1, (2, 15)).astype(np.float32)
    (o0, r0, *_), (o1, r1, *_) = (e.step(a) for e in envs)
    np.testing.assert_array_equal(o0, o1)
    np.testing.assert_array_equal(r0, r1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU (gpu_equality.py checks them there)")
def test_cuda_graph_renders_equal_eager_ones():
    kw = dict(num_envs=4, renderer="amnet_x4", metric="psnr", precision="bf16", device="cuda")
    envs = [BlindSRVectorEnv(cuda_graphs=g, **kw) for g in (False, True)]
    obs = [e.reset(seed=4)[0] for e in envs]
    np.testing.assert_array_equal(obs[0], obs[1])
    a = np.random.default_rng(0).uniform(-1, 1, (4, 15)).astype(np.float32)
    for _ in range(2):
        (o0, r0, *_), (o1, r1, *_) = (e.step(a) for e in envs)
        np.testing.assert_array_equal(o0, o1)
        np.testing.assert_allclose(r0, r1, atol=1e-3)


def test_separable_eq1_in_the_env_keeps_the_levels_and_psnr_rewards(monkeypatch):
    """Off the CPU the env runs Eq. 1 of isotropic Gaussians separably (eq1's taps). Forced on here: the same
    episodes' LR images within one level in >= 99.9% of pixels of the two-step path's (the CPU's default, bit
    for bit the per-image degrade), and the PSNR rewards of the same actions within 1e-3 dB."""
    import blindsr_gym.degradation as degradation

    calls, separable = [], degradation._blur_downscale_separable
    monkeypatch.setattr(degradation, "_blur_downscale_separable", lambda *a: calls.append(1) or separable(*a))
    envs = [BlindSRVectorEnv(num_envs=8, renderer="amnet_x4", metric="psnr", device="cpu") for _ in range(2)]
    assert not envs[0].core.separable_eq1  # the CPU's default
    envs[0].reset(seed=7)
    assert not calls
    envs[1].core.separable_eq1 = True
    obs = [envs[0].reset(seed=7)[0], envs[1].reset(seed=7)[0]]
    a = np.random.default_rng(0).uniform(-1, 1, (8, 15)).astype(np.float32)
    (o0, r0, *_), (o1, r1, *_) = (e.step(a) for e in envs)
    for x, y in ((obs[0], obs[1]), (o0, o1)):
        d = np.abs(x.astype(int) - y.astype(int))
        assert d.max() <= 1 and (d == 0).mean() >= 0.999
    assert len(calls) == 2  # the reset's episodes and the step's next ones
    assert np.abs(r0 - r1).max() <= 1e-3


def test_compile_is_a_bool_and_renders_what_the_eager_env_renders():
    """compile=True runs amnet_x4's blocks through torch.compile: the same observations, and PSNR rewards of
    the same actions within 1e-4 dB of the eager env's (float32 on the CPU)."""
    with pytest.raises(InputError, match="compile"):
        BlindSRVectorEnv(num_envs=2, compile=1, **FAKE)
    with pytest.raises(InputError, match="the renderer is a BicubicRenderer"):
        BlindSRVectorEnv(num_envs=2, compile=True, **FAKE)
    kw = dict(num_envs=2, renderer="amnet_x4", metric="psnr", lr_size=24, device="cpu")
    envs = [BlindSRVectorEnv(compile=c, **kw) for c in (False, True)]
    assert envs[1].core.compile and not envs[0].core.compile
    torch._dynamo.utils.counters.clear()
    obs = [e.reset(seed=4)[0] for e in envs]  # the baselines' renders: the first compiles
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    np.testing.assert_array_equal(obs[0], obs[1])
    a = np.random.default_rng(0).uniform(-1, 1, (2, 15)).astype(np.float32)
    (o0, r0, *_), (o1, r1, *_) = (e.step(a) for e in envs)
    np.testing.assert_array_equal(o0, o1)
    np.testing.assert_allclose(r1, r0, rtol=0, atol=1e-4)
