"""The one-step blind-SR environment."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from blindsr_gym.errors import InputError

from ..utils import to_device, to_uint8
from .core import EnvConfig, EnvCore, Episode


class BlindSREnv(gym.Env):
    """Blind super-resolution as a one-step decision: look at an LR image, choose a kernel code.

    ## Description
    AMNet-RL (Hui et al., CVPR 2021). An HR crop is blurred with an unknown kernel and downscaled
    (Eq. 1); the agent sees the LR image and answers with a kernel code; a frozen non-blind SR
    network (the *renderer*, AMNet or AMGAN) turns LR + code into an SR image; a quality metric of
    that image, relative to rendering with the true kernel, is the reward (Eq. 8). Because the
    reward only needs the metric's *value*, non-differentiable metrics such as NIQE can train the
    kernel estimator.

    ## Action Space
    ``Box(-1, 1, (15,), float32)``: a point of the codec's code box (the PCA codes of the kernel
    family, with a 10% margin), mapped affinely: ``code = codec.action_to_code(action)``. Actions
    outside [-1, 1] are clipped and ``info["action_clipped"]`` is True; NaN/inf or a wrong shape
    raise ``ValueError``.

    ## Observation Space
    ``Box(0, 255, (lr_size, lr_size, 3), uint8)``: the LR image, HWC RGB.

    ## Rewards
    ``r = zeta * (M(G(LR, code)) - M(G(LR, code_GT)))`` with ``zeta = -1`` for lower-is-better
    metrics (``reward_mode="relative"``, Eq. 8); ``zeta * M(G(LR, code))`` with
    ``reward_mode="absolute"``. The baseline ``M(G(LR, code_GT))`` is computed once at reset. A
    dict of weights gives a composite reward, normalised as :mod:`blindsr_gym.rewards` states.
    So r = 0 means "as good as knowing the kernel", and r > 0 beats it.

    ## Starting State
    ``reset`` draws an image of the dataset and a crop position, a kernel from the family (default
    isotropic Gaussians, sigma ~ U[0.2, 4], 21x21) and, when ``noise > 0``, the noise; all from the
    env's ``np_random``. ``options``: ``image_index`` (int), ``kernel`` (a 21x21 array summing to
    1) or ``sigma`` (isotropic width in HR pixels), ``noise`` (sigma in 8-bit levels).

    ## Episode End
    Every episode is one step: ``terminated=True``, ``truncated=False``. Stepping again before
    ``reset`` raises ``RuntimeError``.

    ## Info
    reset: ``code_gt`` (the true kernel's code), ``action_gt`` (the same as an action),
    ``image_index``, the kernel parameters (e.g. ``sigma``), ``baseline`` (per metric).
    step: also ``metric`` (per metric), ``reward_name``, ``code``, ``action_clipped`` and
    ``psnr`` / ``psnr_gt`` (Y, border = scale, against the HR crop). With real LR input
    (``lr_dataset``) there is no HR and no true kernel, and those keys are absent.

    ## Arguments
    An :class:`~blindsr_gym.envs.EnvConfig` (``BlindSREnv(config)``) or its fields as keywords (as
    ``gym.make`` passes them; keywords override a given config's fields):
    - ``renderer``: ``"amnet_x4"``, ``"amgan_x4"``, a checkpoint path, ``"bicubic"`` (a code-dependent
      sharpening fake for tests), or a module with ``.codec`` and ``.scale``.
    - ``metric``: ``"psnr"``, ``"ssim"``, ``"niqe"``, ``"pyiqa:<name>"``, a registered name, a
      ``Metric``, or a dict of weights. ``reward_mode``: ``"relative"`` or ``"absolute"``.
    - ``dataset``: folder of HR images, an ``ImageSource``, or None for the built-in images.
      ``lr_dataset``: folder of real LR images instead (absolute no-reference rewards only).
    - ``scale`` (must match the renderer; default: the renderer's), ``lr_size`` (64),
      ``kernel_family`` (``"isotropic"``, ``"anisotropic"``, ``"dan_setting2"`` or a KernelFamily),
      ``noise`` (8-bit sigma, default 0), ``device`` (``"auto"``: CUDA when present),
      ``precision`` (``"fp32"``, or ``"bf16"`` autocast for speed), ``cuda_graphs`` (on a GPU, replay each
      render from a CUDA graph: one launch instead of hundreds; default off), ``compile`` (AMNet's residual
      blocks through ``torch.compile``: the first render compiles for some seconds; default off),
      ``render_mode`` (``"rgb_array"``).

    ## Version History
    - v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(self, config: EnvConfig | None = None, *, render_mode: str | None = None, **kwargs):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InputError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self.core = EnvCore(config, **kwargs)
        c = self.core
        self.observation_space = spaces.Box(0, 255, (c.lr_size, c.lr_size, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (c.codec.length,), np.float32)
        self._episode: Episode | None = None
        self._done = True
        self._warned_nan = False

    # -- API --------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        b = self.core.new_batch([self.np_random], options)  # a flat crop is redrawn (a NaN baseline)
        self._episode, self._lr, self._hr, self._code_gt = b.episodes[0], b.lr, b.hr, b.codes_gt
        self._sr_gt, self._baseline, self._sr = b.sr_gt, b.baseline, None
        self._psnr_gt = None if b.psnr_gt is None else float(b.psnr_gt[0])
        self._done = False
        return to_uint8(b.lr)[0], self._reset_info()

    def step(self, action):
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode is over (every episode is one step); call reset()")
        c = self.core
        a, clipped = c.check_actions(action, None)
        code = to_device(c.codec.action_to_code(torch.from_numpy(a)[None]), c.device)
        sr = c.render(self._lr, code)
        scores = c.score(sr, self._hr)
        reward = float(c.reward.reward(scores, self._baseline)[0])
        if not np.isfinite(reward) and not self._warned_nan:
            warnings.warn(f"reward is {reward}: the metric is undefined for this SR image", RuntimeWarning,
                          stacklevel=2)
            self._warned_nan = True
        self._sr, self._done = sr, True
        info = self._reset_info()
        info.update(metric={k: float(v[0]) for k, v in scores.items()}, reward_name=c.reward.name,
                    code=code[0].cpu().numpy().copy(), action_clipped=bool(clipped))
        if self._hr is not None:
            info["psnr"] = float(c.hr_psnr(sr, self._hr, scores)[0])
            info["psnr_gt"] = self._psnr_gt
        return to_uint8(self._lr)[0], reward, True, False, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        if self._episode is None:
            raise RuntimeError("call reset() before render()")
        return self.core.panel(self._lr, self._sr, self._sr_gt, self._hr)

    def close(self):
        self._episode = None

    # -- helpers ----------------------------------------------------------------------------
    def _reset_info(self) -> dict:
        ep = self._episode
        info: dict = {"image_index": ep.image_index, **ep.params}
        if self._code_gt is not None:
            info["code_gt"] = self._code_gt[0].cpu().numpy().copy()
            info["action_gt"] = self.core.codec.code_to_action(self._code_gt)[0].cpu().numpy().copy()
        if self._baseline is not None:
            info["baseline"] = {k: float(v[0]) for k, v in self._baseline.items()}
        return info

    @property
    def codec(self):
        return self.core.codec

    @property
    def renderer(self):
        return self.core.renderer
