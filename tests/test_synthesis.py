"""The batched, device-resident data path (blindsr_gym.synthesis) equals the per-image one it replaced:
crops, the 8 symmetries, Eq. 1 with per-episode kernels and noise, and the vector env's infos."""

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from blindsr_gym.data import builtin
from blindsr_gym.degradation import degrade
from blindsr_gym.envs import BlindSREnv, BlindSRVectorEnv
from blindsr_gym.errors import InputError
from blindsr_gym.kernels import isotropic_gaussian
from blindsr_gym.synthesis import DeviceImages, dihedral
from blindsr_gym.utils import to_tensor


def test_dihedral_is_numpys_rot90_and_flip():
    x = np.random.default_rng(0).integers(0, 256, (8, 6, 6, 3), dtype=np.uint8)
    rot, flip = [0, 1, 2, 3, 0, 1, 2, 3], [False] * 4 + [True] * 4
    out = dihedral(torch.from_numpy(x), rot, flip).numpy()
    for i in range(8):
        ref = np.rot90(x[i], rot[i])
        assert np.array_equal(out[i], ref[:, ::-1] if flip[i] else ref), i


def test_device_images_cut_windows_and_refuse_what_does_not_fit():
    src = builtin(mod=4)
    imgs = DeviceImages(src, "cpu")
    assert len(imgs) == len(src) and imgs.shapes[1] == src[1].shape[:2]
    out = imgs.cut([1, 0, 1], [0, 10, 37], [5, 0, 60], 32).numpy()
    for j, (i, t, left) in enumerate([(1, 0, 5), (0, 10, 0), (1, 37, 60)]):
        assert np.array_equal(out[j], src[i][t:t + 32, left:left + 32])
    with pytest.raises(InputError, match="do not fit"):
        DeviceImages(src, "cpu", max_bytes=10_000)


def test_batched_eq1_equals_per_image_degrade_with_per_sample_noise():
    rng = np.random.default_rng(1)
    hr = to_tensor(np.stack([builtin()[i][:64, :64] for i in range(4)]))
    kernels = isotropic_gaussian(np.array([0.5, 1.5, 2.5, 3.5]))
    draws = rng.standard_normal((4, 3, 16, 16), dtype=np.float32)
    levels = np.array([0.0, 2.0, 5.0, 10.0], np.float32)
    from blindsr_gym.degradation import eq1

    batched = eq1(hr, kernels, 4, torch.from_numpy(draws * (levels / 255)[:, None, None, None]))
    for i in range(4):
        per_image = degrade(hr[i:i + 1], kernels[i], 4, float(levels[i]), _Replay(draws[i:i + 1]))
        d = (batched[i:i + 1] - per_image).abs() * 255
        assert float(d.max()) <= 1 + 1e-4 and float((d < 1e-4).float().mean()) >= 0.999, i


class _Replay(np.random.Generator):
    """A Generator whose standard_normal returns the given array (the draws the batched path used)."""

    def __init__(self, values):
        super().__init__(np.random.PCG64(0))
        self.values = values

    def standard_normal(self, shape, dtype=np.float64):
        assert tuple(shape) == self.values.shape
        return self.values.astype(dtype)


def _same_layout(a, b, path="info"):
    """Two vector infos with the same keys, masks, dtypes and shapes (values compared by the caller)."""
    assert set(a) == set(b), (path, sorted(set(a) ^ set(b)))
    for k in a:
        if isinstance(a[k], dict):
            _same_layout(a[k], b[k], f"{path}.{k}")
        else:
            va, vb = np.asarray(a[k]), np.asarray(b[k])
            assert va.dtype == vb.dtype and va.shape == vb.shape, (f"{path}.{k}", va.dtype, vb.dtype, va.shape,
                                                                   vb.shape)
            if k.startswith("_"):
                assert np.array_equal(va, vb), f"{path}.{k}"


@pytest.mark.parametrize("metric,tol", [("psnr", 1e-3), ("niqe", 1e-3)])
def test_vector_env_with_noise_equals_single_envs(metric, tol):
    n = 6
    kw = dict(metric=metric, renderer="bicubic", lr_size=48, device="cpu", noise=3.0)
    venv = BlindSRVectorEnv(num_envs=n, **kw)
    sync = SyncVectorEnv([lambda: BlindSREnv(**kw) for _ in range(n)], autoreset_mode=AutoresetMode.SAME_STEP)
    ob_v, info_v = venv.reset(seed=3)
    ob_s, info_s = sync.reset(seed=3)
    _same_layout(info_v, info_s)
    rng = np.random.default_rng(0)
    for _ in range(2):
        d = np.abs(ob_v.astype(int) - ob_s.astype(int))
        assert d.max() <= 1 and (d == 0).mean() >= 0.999
        a = rng.uniform(-1, 1, (n, 15)).astype(np.float32)
        ob_v, r_v, _, _, info_v = venv.step(a)
        ob_s, r_s, _, _, info_s = sync.step(a)
        _same_layout(info_v, info_s)
        np.testing.assert_allclose(r_v, r_s, atol=tol)
        for key in ("code", "action_gt", "code_gt", "sigma", "image_index", "action_clipped"):
            np.testing.assert_array_equal(info_v["final_info"][key], info_s["final_info"][key], err_msg=key)
        assert list(info_v["final_info"]["reward_name"]) == list(info_s["final_info"]["reward_name"])
        for i in range(n):
            assert np.array_equal(info_v["final_obs"][i], info_s["final_obs"][i])
