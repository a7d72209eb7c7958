"""Blur kernels: Gaussian generators, the kernel families of the papers, Gaussian8, and the PCA codec.

A kernel is a float32 tensor of shape ``[size, size]`` (or ``[n, size, size]`` for a batch), non-negative
and summing to 1. Offsets run from ``-(size-1)/2`` to ``(size-1)/2`` pixels around the centre, as in
IKC/DAN (``size`` must be odd). ``sigma`` is the standard deviation in HR pixels.

The *kernel code* is the PCA projection of a flattened kernel onto ``length`` (15) principal
components. The renderer is conditioned on it, and the RL action space is a box over it
(:meth:`KernelCodec.action_to_code`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from blindsr_gym.errors import InputError

__all__ = [
    "isotropic_gaussian",
    "isotropic_taps",
    "isotropic_sigma",
    "anisotropic_gaussian",
    "KernelFamily",
    "IsotropicFamily",
    "AnisotropicFamily",
    "DANSetting2Family",
    "get_family",
    "gaussian8",
    "gaussian8_sigmas",
    "KernelCodec",
    "kernel_psnr",
]

#: Sigma ranges of the Gaussian8 benchmark kernels (IKC, Gu et al. 2019) per scale.
GAUSSIAN8_RANGES = {2: (0.8, 1.6), 3: (1.35, 2.4), 4: (1.8, 3.2)}


def _check_size(size: int) -> int:
    if not isinstance(size, (int, np.integer)) or size < 3 or size % 2 == 0:
        raise InputError(f"kernel size must be an odd integer >= 3, got {size!r}")
    return int(size)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Column (x) and row (y) offsets from the kernel centre, float64 [size, size]."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    return np.meshgrid(ax, ax)  # xx varies along columns, yy along rows


def _as_positive(name: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise InputError(f"{name} must be finite and > 0, got {value!r}")
    return arr


def _normalise(k: np.ndarray) -> torch.Tensor:
    k = k / k.sum(axis=(-1, -2), keepdims=True)
    return torch.from_numpy(k.astype(np.float32))


def isotropic_gaussian(sigma, size: int = 21) -> torch.Tensor:
    """Isotropic Gaussian kernel(s), float32 ``[size, size]``, or ``[n, size, size]`` for n sigmas.

    ``sigma``: standard deviation in HR pixels (> 0), a scalar or a 1-D sequence.
    """
    size = _check_size(size)
    s = _as_positive("sigma", sigma)
    xx, yy = _grid(size)
    k = np.exp(-(xx**2 + yy**2) / (2.0 * s[..., None, None] ** 2))
    return _normalise(k)


def isotropic_taps(sigma, size: int = 21) -> np.ndarray:
    """The 1-D factors of :func:`isotropic_gaussian`, float64 ``[n, size]`` summing to 1: the kernel of width
    ``sigma`` is ``outer(taps, taps)`` (to float64 rounding), so blurring with it is two 1-D passes."""
    size = _check_size(size)
    s = np.atleast_1d(_as_positive("sigma", sigma))
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    t = np.exp(-ax**2 / (2.0 * s[:, None] ** 2))
    return t / t.sum(axis=1, keepdims=True)


@functools.lru_cache(maxsize=8)
def _second_moment_table(size: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``(r^2 [l, l], second moments, sigmas)`` of isotropic Gaussians on a fine sigma grid (built once per
    size: ``isotropic_sigma`` runs on every step of the actor's ``sigma`` loss)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    r2 = (r[:, None] ** 2 + r[None, :] ** 2)
    grid = np.linspace(0.05, 8.0, 3181)
    return r2, (isotropic_gaussian(grid, size).double() * r2).sum(dim=(1, 2)).numpy(), grid


def isotropic_sigma(kernels: torch.Tensor) -> torch.Tensor:
    """``[n]`` widths of kernels ``[n, l, l]``: the isotropic Gaussian with the same second moment
    ``sum k (x^2 + y^2)`` (exact for the family, truncation included: looked up on a fine grid); for other
    kernels, e.g. an estimator's, the width of the Gaussian they spread like."""
    r2, m_grid, grid = _second_moment_table(kernels.shape[-1])
    m = (kernels.detach().double().cpu() * r2).sum(dim=(1, 2)).numpy()
    return torch.from_numpy(np.interp(m, m_grid, grid)).float().to(kernels.device)


def anisotropic_gaussian(sigma1, sigma2, theta, size: int = 21) -> torch.Tensor:
    """Anisotropic Gaussian kernel(s): std ``sigma1`` along the axis at angle ``theta``, ``sigma2`` across.

    ``theta`` is in radians, measured from the image's horizontal axis towards its vertical axis
    (rows grow downwards). Scalars give ``[size, size]``; equal-length 1-D sequences give a batch.
    """
    size = _check_size(size)
    s1, s2 = _as_positive("sigma1", sigma1), _as_positive("sigma2", sigma2)
    th = np.asarray(theta, dtype=np.float64)
    if not np.all(np.isfinite(th)):
        raise InputError(f"theta must be finite, got {theta!r}")
    s1, s2, th = np.broadcast_arrays(s1, s2, th)
    c, s = np.cos(th), np.sin(th)
    # Sigma = R diag(s1^2, s2^2) R^T, R the rotation by theta; its inverse has the same form.
    i11 = c**2 / s1**2 + s**2 / s2**2
    i22 = s**2 / s1**2 + c**2 / s2**2
    i12 = c * s * (1 / s1**2 - 1 / s2**2)
    xx, yy = _grid(size)
    q = i11[..., None, None] * xx**2 + 2 * i12[..., None, None] * xx * yy + i22[..., None, None] * yy**2
    return _normalise(np.exp(-0.5 * q))


# --------------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelFamily:
    """A distribution over kernels. ``sample(rng, n)`` draws ``[n, size, size]`` float32 kernels."""

    size: int = 21

    name = "family"

    def __post_init__(self):
        _check_size(self.size)

    def sample_params(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """Draw the parameters of ``n`` kernels from ``rng`` (arrays of length n)."""
        raise NotImplementedError

    def make(self, **params) -> torch.Tensor:
        """Build the kernels for parameters as returned by :meth:`sample_params`."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> torch.Tensor:
        """Draw ``n`` kernels, float32 ``[n, size, size]``, using only ``rng``."""
        return self.make(**self.sample_params(_check_rng(rng), _check_n(n)))

    def config(self) -> dict:
        """JSON-able description (stored with codecs and checkpoints)."""
        cfg = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {"family": self.name, **cfg}


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), got {type(rng)}"
        )
    return rng


def _check_n(n) -> int:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    return int(n)


def _check_range(name: str, lo: float, hi: float, positive: bool = True):
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or (positive and lo <= 0):
        raise InputError(f"invalid {name} range [{lo}, {hi}]")


@dataclass(frozen=True)
class IsotropicFamily(KernelFamily):
    """Isotropic Gaussians, sigma ~ U[sigma_min, sigma_max] (the AMNet-RL / IKC training family)."""

    sigma_min: float = 0.2
    sigma_max: float = 4.0
    name = "isotropic"

    def __post_init__(self):
        super().__post_init__()
        _check_range("sigma", self.sigma_min, self.sigma_max)

    def sample_params(self, rng, n):
        return {"sigma": rng.uniform(self.sigma_min, self.sigma_max, n)}

    def make(self, sigma):
        return isotropic_gaussian(np.atleast_1d(sigma), self.size)


@dataclass(frozen=True)
class AnisotropicFamily(KernelFamily):
    """Anisotropic Gaussians, sigma1, sigma2 ~ U[sigma_min, sigma_max], theta ~ U[theta_min, theta_max] (KENet)."""

    sigma_min: float = 0.2
    sigma_max: float = 4.0
    theta_min: float = 0.0
    theta_max: float = math.pi
    name = "anisotropic"

    def __post_init__(self):
        super().__post_init__()
        _check_range("sigma", self.sigma_min, self.sigma_max)
        _check_range("theta", self.theta_min, self.theta_max, positive=False)

    def sample_params(self, rng, n):
        return {
            "sigma1": rng.uniform(self.sigma_min, self.sigma_max, n),
            "sigma2": rng.uniform(self.sigma_min, self.sigma_max, n),
            "theta": rng.uniform(self.theta_min, self.theta_max, n),
        }

    def make(self, sigma1, sigma2, theta):
        return anisotropic_gaussian(np.atleast_1d(sigma1), np.atleast_1d(sigma2),
                                    np.atleast_1d(theta), self.size)


@dataclass(frozen=True)
class DANSetting2Family(AnisotropicFamily):
    """DAN's setting 2 (Luo et al. 2020): anisotropic, sigma in [0.6, 5], theta in [-pi, pi], and
    multiplicative noise: every tap is scaled by ``1 + U[0, noise]`` before renormalising."""

    sigma_min: float = 0.6
    sigma_max: float = 5.0
    theta_min: float = -math.pi
    theta_max: float = math.pi
    noise: float = 0.25
    name = "dan_setting2"

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise InputError(f"noise must be >= 0, got {self.noise}")

    def sample_params(self, rng, n):
        p = super().sample_params(rng, n)
        p["disturb"] = rng.uniform(0.0, self.noise, (n, self.size, self.size))
        return p

    def make(self, sigma1, sigma2, theta, disturb=None):
        k = super().make(sigma1, sigma2, theta)
        if disturb is None:
            return k
        k = k * (1 + torch.as_tensor(disturb, dtype=torch.float32).reshape(k.shape))
        return k / k.sum(dim=(-1, -2), keepdim=True)


_FAMILIES = {c.name: c for c in (IsotropicFamily, AnisotropicFamily, DANSetting2Family)}


def get_family(name: str | KernelFamily = "isotropic", **kwargs) -> KernelFamily:
    """A kernel family by name (``"isotropic"``, ``"anisotropic"``, ``"dan_setting2"``) or instance."""
    if isinstance(name, KernelFamily):
        if kwargs:
            raise InputError("keyword arguments are only accepted with a family name")
        return name
    if name not in _FAMILIES:
        raise InputError(f"unknown kernel family {name!r}; choose one of {sorted(_FAMILIES)}")
    return _FAMILIES[name](**kwargs)


def family_from_config(cfg: dict) -> KernelFamily:
    """Inverse of :meth:`KernelFamily.config`."""
    cfg = dict(cfg)
    return get_family(cfg.pop("family"), **cfg)


def gaussian8_sigmas(scale: int = 4) -> np.ndarray:
    """The 8 sigmas of the Gaussian8 benchmark for ``scale`` (2, 3 or 4): ``linspace(lo, hi, 8)``."""
    if scale not in GAUSSIAN8_RANGES:
        raise InputError(f"Gaussian8 is defined for scales {sorted(GAUSSIAN8_RANGES)}, got {scale!r}")
    return np.linspace(*GAUSSIAN8_RANGES[scale], 8)


def gaussian8(scale: int = 4, size: int = 21) -> torch.Tensor:
    """The Gaussian8 benchmark kernels (IKC): 8 isotropic Gaussians, float32 ``[8, size, size]``."""
    return isotropic_gaussian(gaussian8_sigmas(scale), size)


# --------------------------------------------------------------------------------------------
# PCA codec
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class KernelCodec:
    """PCA of flattened kernels: ``code = (k - mean) @ components.T``; ``k ~ mean + code @ components``.

    ``code_low`` / ``code_high`` bound the box the family's codes span (with a margin); actions in
    ``[-1, 1]^length`` map affinely onto that box. ``hash`` identifies the codec's numbers, so a
    checkpoint can refuse a codec it was not trained with.
    """

    mean: np.ndarray  # [size*size] float32
    components: np.ndarray  # [length, size*size] float32, orthonormal rows
    code_low: np.ndarray  # [length] float32
    code_high: np.ndarray  # [length] float32
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.mean = np.ascontiguousarray(self.mean, dtype=np.float32).reshape(-1)
        self.components = np.ascontiguousarray(self.components, dtype=np.float32)
        self.code_low = np.ascontiguousarray(self.code_low, dtype=np.float32).reshape(-1)
        self.code_high = np.ascontiguousarray(self.code_high, dtype=np.float32).reshape(-1)
        L, D = self.components.shape
        size = int(round(math.sqrt(D)))
        if size * size != D or self.mean.shape != (D,) or self.code_low.shape != (L,) \
                or self.code_high.shape != (L,) or np.any(self.code_high <= self.code_low):
            raise InputError("inconsistent KernelCodec arrays")
        self.size, self.length = size, L
        self._cache: dict = {}

    # -- identity ---------------------------------------------------------------------------
    @property
    def hash(self) -> str:
        """sha256 (first 16 hex digits) of the codec's numbers and shape."""
        h = hashlib.sha256()
        for a in (self.mean, self.components, self.code_low, self.code_high):
            h.update(np.ascontiguousarray(a, dtype="<f4").tobytes())
        h.update(json.dumps([self.size, self.length]).encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        fam = self.meta.get("family", {}).get("family", "?")
        return f"KernelCodec(size={self.size}, length={self.length}, family={fam!r}, hash={self.hash})"

    # -- tensors on demand ------------------------------------------------------------------
    def _t(self, like: torch.Tensor):
        # Tensors made under torch.inference_mode() cannot enter autograd later, so the cache keeps
        # separate copies for inference and for ordinary (possibly differentiated) use.
        key = (like.device, like.dtype, torch.is_inference_mode_enabled())
        if key not in self._cache:
            mk = lambda a: torch.as_tensor(a, dtype=like.dtype, device=like.device)  # noqa: E731
            self._cache[key] = tuple(mk(a) for a in (self.mean, self.components, self.code_low,
                                                      self.code_high))
        return self._cache[key]

    @staticmethod
    def _float(x) -> torch.Tensor:
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            x = x.float()
        return x

    def encode(self, kernels) -> torch.Tensor:
        """Kernels ``[n, size, size]`` (or one ``[size, size]``) to codes ``[n, length]``."""
        k = self._float(kernels)
        if k.shape[-2:] != (self.size, self.size) or k.dim() not in (2, 3):
            raise InputError(f"kernels must be [n, {self.size}, {self.size}], got {tuple(k.shape)}")
        mean, comp, _, _ = self._t(k)
        flat = k.reshape(-1, self.size * self.size)
        # in float64, so that a kernel's code does not depend on the batch it is encoded in (float32
        # matmuls take batch-size dependent kernels; 1e-7 code differences moved a NIQE baseline by 1e-3)
        return ((flat.double() - mean.double()) @ comp.double().T).to(k.dtype)

    def decode(self, codes) -> torch.Tensor:
        """Codes ``[n, length]`` to kernels ``[n, size, size]`` (the PCA reconstruction, not renormalised)."""
        c = self._float(codes)
        if c.shape[-1] != self.length or c.dim() not in (1, 2):
            raise InputError(f"codes must be [n, {self.length}], got {tuple(c.shape)}")
        mean, comp, _, _ = self._t(c)
        return (c.reshape(-1, self.length) @ comp + mean).reshape(-1, self.size, self.size)

    def action_to_code(self, actions) -> torch.Tensor:
        """Map actions in ``[-1, 1]^length`` affinely onto the code box (no clipping)."""
        a = self._float(actions)
        if a.shape[-1] != self.length:
            raise InputError(f"actions must have last dimension {self.length}, got {tuple(a.shape)}")
        _, _, lo, hi = self._t(a)
        return (lo + hi) / 2 + a * (hi - lo) / 2

    def code_to_action(self, codes) -> torch.Tensor:
        """Inverse of :meth:`action_to_code`."""
        c = self._float(codes)
        if c.shape[-1] != self.length:
            raise InputError(f"codes must have last dimension {self.length}, got {tuple(c.shape)}")
        _, _, lo, hi = self._t(c)
        return (c - (lo + hi) / 2) / ((hi - lo) / 2)

    # -- fitting, error, persistence --------------------------------------------------------
    @classmethod
    def fit(cls, family: KernelFamily | str = "isotropic", n: int = 20000, seed: int = 0,
            length: int = 15, margin: float = 0.1) -> KernelCodec:
        """Fit on ``n`` kernels drawn from ``family`` with ``np.random.default_rng(seed)``.

        The code box is the per-component [min, max] of the sample's codes, widened by
        ``margin`` times its range on each side.
        """
        fam = get_family(family)
        k = fam.sample(np.random.default_rng(seed), n).double().reshape(n, -1).numpy()
        if not 1 <= length <= k.shape[1]:
            raise InputError(f"length must be in [1, {k.shape[1]}], got {length}")
        mean = k.mean(0)
        _, _, vt = np.linalg.svd(k - mean, full_matrices=False)
        comp = vt[:length]
        # SVD signs are arbitrary: make each component's largest-magnitude entry positive.
        sign = np.sign(comp[np.arange(length), np.abs(comp).argmax(1)])
        comp = comp * sign[:, None]
        codes = (k - mean) @ comp.T
        lo, hi = codes.min(0), codes.max(0)
        pad = margin * np.maximum(hi - lo, 1e-12)
        meta = {"family": fam.config(), "n": n, "seed": seed, "margin": margin}
        return cls(mean, comp, lo - pad, hi + pad, meta)

    def reconstruction_error(self, family: KernelFamily | str = "isotropic", n: int = 2000,
                             seed: int = 1) -> dict:
        """Error of ``decode(encode(k))`` on ``n`` fresh kernels: max abs, and relative L2 (mean, max)."""
        fam = get_family(family)
        k = fam.sample(np.random.default_rng(seed), n)
        rec = self.decode(self.encode(k))
        diff = (rec - k).reshape(n, -1)
        rel = diff.norm(dim=1) / k.reshape(n, -1).norm(dim=1)
        return {"max_abs": float(diff.abs().max()), "rel_l2_mean": float(rel.mean()),
                "rel_l2_max": float(rel.max()), "n": n, "seed": seed}

    def save(self, path: str | Path) -> None:
        """Write the codec to an ``.npz`` file (arrays plus JSON metadata and the hash)."""
        meta = dict(self.meta, hash=self.hash)
        np.savez(path, mean=self.mean, components=self.components, code_low=self.code_low,
                 code_high=self.code_high, meta=np.array(json.dumps(meta, sort_keys=True)))

    @classmethod
    def load(cls, path: str | Path) -> KernelCodec:
        """Read a codec written by :meth:`save`; a file whose numbers do not match its hash fails."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"kernel codec file not found: {path}")
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            codec = cls(z["mean"], z["components"], z["code_low"], z["code_high"], meta)
        stored = meta.pop("hash", None)
        if stored is not None and stored != codec.hash:
            raise InputError(f"{path}: stored hash {stored} does not match its contents ({codec.hash})")
        return codec

    @classmethod
    def default(cls, size: int = 21, length: int = 15) -> KernelCodec:
        """A shipped codec for the isotropic family (sigma in [0.2, 4], ``size`` x ``size``): length 15
        (AMNet-RL's), or 10 (DAN's)."""
        return _default_codec(size, length)


def _codec_file(size: int, length: int) -> str:
    return f"codec_isotropic_k{size}.npz" if length == 15 else f"codec_isotropic_k{size}_l{length}.npz"


@functools.cache
def _default_codec(size: int, length: int = 15) -> KernelCodec:
    ref = resources.files("blindsr_gym") / "assets" / _codec_file(size, length)
    if not ref.is_file():
        raise FileNotFoundError(
            f"no shipped codec for kernel size {size}, length {length}; fit one with "
            f"KernelCodec.fit(IsotropicFamily(size={size}), length={length})"
        )
    with resources.as_file(ref) as p:
        return KernelCodec.load(p)


def kernel_psnr(k_hat: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per-kernel PSNR in dB with the true kernel's peak as the signal peak: ``10 log10(max(k)^2 / MSE)``
    (KENet's Table 3 figure). ``k_hat`` and ``k`` are ``[N, l, l]``."""
    if k_hat.shape != k.shape or k.dim() != 3:
        raise InputError(f"kernels must both be [N, l, l], got {tuple(k_hat.shape)} and {tuple(k.shape)}")
    mse = (k_hat.double() - k.double()).pow(2).mean(dim=(1, 2))
    peak = k.double().amax(dim=(1, 2))
    return (10 * torch.log10(peak ** 2 / mse.clamp_min(1e-30))).float()
