import math

import numpy as np
import pytest
import torch

from blindsr_gym.kernels import (
    AnisotropicFamily,
    DANSetting2Family,
    IsotropicFamily,
    KernelCodec,
    anisotropic_gaussian,
    gaussian8,
    gaussian8_sigmas,
    get_family,
    isotropic_gaussian,
)


def reference_gaussian(cov, size=21):
    """Direct evaluation of exp(-x^T C^-1 x / 2) at integer offsets, independent of the package."""
    inv = np.linalg.inv(cov)
    c = (size - 1) / 2
    k = np.zeros((size, size))
    for r in range(size):
        for q in range(size):
            v = np.array([q - c, r - c])  # (x = column, y = row)
            k[r, q] = math.exp(-0.5 * v @ inv @ v)
    return k / k.sum()


@pytest.mark.parametrize("sigma", [0.2, 1.0, 2.6, 4.0])
def test_isotropic_matches_reference(sigma):
    k = isotropic_gaussian(sigma)
    assert k.dtype == torch.float32 and k.shape == (21, 21)
    assert float(k.min()) >= 0 and abs(float(k.sum()) - 1) < 1e-6
    ref = reference_gaussian(np.diag([sigma**2, sigma**2]))
    np.testing.assert_allclose(k.numpy(), ref, atol=1e-7)


def test_anisotropic_matches_reference_and_orientation():
    s1, s2, th = 3.0, 1.0, 0.7
    k = anisotropic_gaussian(s1, s2, th)
    R = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    ref = reference_gaussian(R @ np.diag([s1**2, s2**2]) @ R.T)
    np.testing.assert_allclose(k.numpy(), ref, atol=1e-7)
    # theta = 0: long axis horizontal, so the row through the centre is wider than the column
    k0 = anisotropic_gaussian(3.0, 1.0, 0.0)
    assert k0[10, 13] > k0[13, 10]
    # equal sigmas: isotropic whatever theta
    np.testing.assert_allclose(anisotropic_gaussian(2.0, 2.0, 1.1), isotropic_gaussian(2.0), atol=1e-7)


def test_batched_generators():
    k = isotropic_gaussian([1.0, 2.0, 3.0])
    assert k.shape == (3, 21, 21)
    np.testing.assert_allclose(k[1], isotropic_gaussian(2.0), atol=0)
    assert anisotropic_gaussian([1, 2], [2, 3], [0, 1], size=15).shape == (2, 15, 15)


@pytest.mark.parametrize("bad", [dict(sigma=0), dict(sigma=-1), dict(sigma=float("nan")), dict(sigma=1, size=20)])
def test_generator_errors(bad):
    with pytest.raises(ValueError):
        isotropic_gaussian(**bad)


@pytest.mark.parametrize("family", [IsotropicFamily(), AnisotropicFamily(), DANSetting2Family()])
def test_family_sampling(family):
    k1 = family.sample(np.random.default_rng(0), 16)
    k2 = family.sample(np.random.default_rng(0), 16)
    assert k1.shape == (16, 21, 21) and k1.dtype == torch.float32
    assert torch.equal(k1, k2), "same seed must give the same kernels"
    assert float(k1.min()) >= 0
    np.testing.assert_allclose(k1.sum(dim=(1, 2)).numpy(), 1, atol=1e-5)
    assert not torch.equal(k1, family.sample(np.random.default_rng(1), 16))


def test_family_ranges():
    p = IsotropicFamily().sample_params(np.random.default_rng(0), 5000)
    assert 0.2 <= p["sigma"].min() < 0.25 and 3.95 < p["sigma"].max() <= 4.0
    p = DANSetting2Family().sample_params(np.random.default_rng(0), 5000)
    assert p["sigma1"].min() >= 0.6 and p["sigma1"].max() <= 5.0
    assert p["theta"].min() < -3.0 and p["theta"].max() > 3.0
    assert 0 <= p["disturb"].min() and p["disturb"].max() <= 0.25
    # the multiplicative noise changes the kernel but keeps it normalised
    fam = DANSetting2Family()
    clean = fam.make(p["sigma1"][:2], p["sigma2"][:2], p["theta"][:2])
    noisy = fam.make(p["sigma1"][:2], p["sigma2"][:2], p["theta"][:2], p["disturb"][:2])
    assert (clean - noisy).abs().max() > 1e-4
    np.testing.assert_allclose(noisy.sum(dim=(1, 2)).numpy(), 1, atol=1e-5)


def test_family_errors():
    with pytest.raises(ValueError, match="unknown kernel family"):
        get_family("gaussian")
    with pytest.raises(ValueError):
        IsotropicFamily(sigma_min=3, sigma_max=1)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        IsotropicFamily().sample(0, 3)


def test_gaussian8():
    np.testing.assert_allclose(gaussian8_sigmas(4), np.linspace(1.8, 3.2, 8))
    np.testing.assert_allclose(gaussian8_sigmas(2)[[0, -1]], [0.8, 1.6])
    np.testing.assert_allclose(gaussian8_sigmas(3)[[0, -1]], [1.35, 2.4])
    k = gaussian8(4)
    assert k.shape == (8, 21, 21)
    np.testing.assert_allclose(k[-1], isotropic_gaussian(3.2), atol=0)
    with pytest.raises(ValueError, match="scales"):
        gaussian8(5)


def test_shipped_codec():
    codec = KernelCodec.default()
    assert (codec.size, codec.length) == (21, 15)
    assert codec.hash == "43bc3626fc3d9081", "the shipped codec changed: checkpoints will refuse it"
    comps = torch.from_numpy(codec.components).double()
    np.testing.assert_allclose((comps @ comps.T).numpy(), np.eye(15), atol=1e-5)
    err = codec.reconstruction_error("isotropic", n=500)
    assert err["max_abs"] < 1e-6 and err["rel_l2_max"] < 1e-5
    # Gaussian8 (inside the family) round-trips too
    k = gaussian8(4)
    assert (codec.decode(codec.encode(k)) - k).abs().max() < 1e-6


def test_codec_refit_reproduces_shipped():
    fitted = KernelCodec.fit("isotropic", n=20000, seed=0)
    shipped = KernelCodec.default()
    np.testing.assert_allclose(fitted.mean, shipped.mean, atol=1e-7)
    # components only matter up to float noise in the low-variance tail: compare the leading ones
    np.testing.assert_allclose(fitted.components[:4], shipped.components[:4], atol=1e-4)


def test_codec_actions_roundtrip_and_box(tmp_path):
    codec = KernelCodec.default()
    a = torch.rand(10, 15) * 2 - 1
    np.testing.assert_allclose(codec.code_to_action(codec.action_to_code(a)), a, atol=1e-4)
    assert torch.allclose(codec.action_to_code(-torch.ones(15)), torch.from_numpy(codec.code_low))
    assert torch.allclose(codec.action_to_code(torch.ones(15)), torch.from_numpy(codec.code_high))
    # the family's codes lie strictly inside the box (the margin), so their actions are in (-1, 1)
    codes = codec.encode(IsotropicFamily().sample(np.random.default_rng(5), 1000))
    acts = codec.code_to_action(codes)
    assert acts.abs().max() < 1
    # persistence keeps the hash; a tampered file is refused
    codec.save(tmp_path / "c.npz")
    assert KernelCodec.load(tmp_path / "c.npz").hash == codec.hash
    z = dict(np.load(tmp_path / "c.npz"))
    z["mean"] = z["mean"] + 1e-3
    np.savez(tmp_path / "bad.npz", **z)
    with pytest.raises(ValueError, match="hash"):
        KernelCodec.load(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        KernelCodec.load(tmp_path / "missing.npz")


def test_codec_shape_errors():
    codec = KernelCodec.default()
    with pytest.raises(ValueError, match="kernels must be"):
        codec.encode(torch.zeros(2, 15, 15))
    with pytest.raises(ValueError, match="codes must be"):
        codec.decode(torch.zeros(2, 10))
    with pytest.raises(ValueError, match="actions"):
        codec.action_to_code(torch.zeros(3))


def test_codec_is_differentiable_after_inference_mode_use():
    """Regression: the codec's tensor cache once handed inference tensors to autograd code (CI failure)."""
    codec = KernelCodec(*[getattr(KernelCodec.default(), a) for a in ("mean", "components", "code_low",
                                                                        "code_high")])
    with torch.inference_mode():
        codec.decode(codec.action_to_code(torch.zeros(1, 15)))
    a = torch.zeros(2, 15, requires_grad=True)
    codec.decode(codec.action_to_code(a)).sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
