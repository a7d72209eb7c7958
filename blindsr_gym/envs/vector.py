"""A batched vector env: N one-step episodes rendered in one renderer pass and scored in one metric call."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from blindsr_gym.errors import InputError

from ..utils import NonFiniteOutputError, check_finite, to_device, to_uint8
from .core import SR_WHAT, EnvConfig, EnvCore, generators_at


class BlindSRVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`~blindsr_gym.envs.BlindSREnv`, batched.

    ``gym.make_vec("BlindSR-PSNR-v0", num_envs=64, vectorization_mode="vector_entry_point")``.

    Each ``step`` renders all N actions in **one** renderer pass and scores them in one batched
    metric call, then draws the next N episodes and renders their true-kernel baselines in one more
    pass, all on the env's device. On a GPU all of it is queued before the host waits for the device
    once (the draws run on the host while the device renders); ``cuda_graphs=True`` replays each
    render from a CUDA graph, and ``compile=True`` runs AMNet's blocks through ``torch.compile``.

    Autoreset: ``AutoresetMode.SAME_STEP``. Every episode is one step, so every ``step`` ends all N
    episodes and resets them at once: the observations it returns are the *next* episodes' LR
    images; the finished episodes' observations and infos are in ``info["final_obs"]`` and
    ``info["final_info"]``, as Gymnasium's same-step autoreset defines. The rewards belong to the
    finished episodes.

    Seeding: ``reset(seed=s)`` seeds sub-env ``i`` with ``s + i`` (a list gives one seed each), so it
    reproduces N single envs seeded like that (the same crops, kernels and noise; rewards equal up
    to the floating-point difference of a batched pass). ``options`` apply to every sub-env.
    The keyword arguments are :class:`BlindSREnv`'s.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 1, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, config: EnvConfig | None = None, render_mode: str | None = None,
                 **kwargs):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise InputError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InputError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.core = c = EnvCore(config, **kwargs)
        self.single_observation_space = spaces.Box(0, 255, (c.lr_size, c.lr_size, 3), np.uint8)
        self.single_action_space = spaces.Box(-1.0, 1.0, (c.codec.length,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs: list[np.random.Generator] | None = None
        self._options: dict = {}
        self._drawn_from: list[dict] | None = None  # the generators' states the current episodes were drawn from
        self._episodes = None
        self._sr = None

    # -- API --------------------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        super().reset(seed=seed if isinstance(seed, int) else None)
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise InputError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        if seed is not None or self._rngs is None:
            self._rngs = [seeding.np_random(s)[0] if s is not None or self._rngs is None else self._rngs[i]
                          for i, s in enumerate(seeds)]
        self._options = dict(options or {})
        self._new_episodes()
        return self._obs, self._masked(self._reset_infos())

    def step(self, actions):
        if self._episodes is None:
            raise RuntimeError("call reset() before step()")
        c = self.core
        a, clipped = c.check_actions(actions, self.num_envs)
        codes = to_device(c.codec.action_to_code(torch.from_numpy(a)), c.device)
        # Everything of the step is queued on the device before the host waits for it once (in new_batch):
        # the action's render and scores, then the next episodes, drawn here (CPU) while the device renders.
        # The step itself draws nothing from the generators, so drawing here changes no episode; a step that
        # fails leaves the generators where they were and the env on its current episodes.
        sr = c.render(self._lr, codes, check=False)
        finite = torch.isfinite(sr).all()
        states = [r.bit_generator.state for r in self._rngs]
        try:
            drawn = c.draw_all(self._rngs, self._options)
            scores = c.score(sr, self._hr, to_cpu=False)
            psnr_sr = None if self._hr is None else c.hr_psnr(sr, self._hr, scores)
            batch = c.new_batch(self._rngs, self._options, drawn)
            if not bool(finite):
                check_finite(sr, SR_WHAT)  # raises: broken weights must not become a reward
        except BaseException as e:
            for r, st in zip(self._rngs, states, strict=True):
                r.bit_generator.state = st
            if isinstance(e, Exception) and not isinstance(e, NonFiniteOutputError) and not bool(finite):
                check_finite(sr, SR_WHAT)  # a broken render is the error, whatever scoring it raised
            raise
        scores = {k: v.cpu() for k, v in scores.items()}
        rewards = c.reward.reward(scores, self._baseline).numpy().astype(np.float64)
        psnr_gt = None
        if psnr_sr is not None:
            psnr_sr, psnr_gt = psnr_sr.cpu().numpy(), self._psnr_gt
        final_obs = self._obs.copy()  # the array returned for these episodes belongs to the caller
        final = self._reset_infos()
        final.update(metric={k: v.double().cpu().numpy() for k, v in scores.items()},
                     reward_name=np.array([c.reward.name] * self.num_envs, dtype=object),
                     code=codes.cpu().numpy().copy(), action_clipped=np.asarray(clipped, dtype=bool))
        if psnr_sr is not None:
            final.update(psnr=np.asarray(psnr_sr, dtype=np.float64).copy(),
                         psnr_gt=np.asarray(psnr_gt, dtype=np.float64).copy())
        obs_list = np.empty(self.num_envs, dtype=object)
        obs_list[:] = list(final_obs)
        self._sr = sr
        self._final = (self._lr, sr, self._sr_gt, self._hr)  # the finished episodes, for final_panels()
        self._new_episodes(batch=batch, drawn_from=states)  # same-step autoreset
        infos = self._masked({"final_obs": obs_list, "final_info": final, **self._reset_infos()})
        terminated = np.ones(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        return self._obs, rewards, terminated, truncated, infos

    def episode_state(self) -> dict:
        """What the current episodes were drawn from: each sub-env's generator state before the draw, and the
        reset options (plain data; ``json.dumps`` stores it when the options are JSON's). A trainer checkpointed
        between two resets keeps it, and :meth:`restore_episodes` draws the same episodes again."""
        if self._drawn_from is None:
            raise RuntimeError("call reset() before episode_state()")
        return {"generators": [dict(st) for st in self._drawn_from], "options": dict(self._options)}

    def restore_episodes(self, state: dict):
        """Draw again the episodes of :meth:`episode_state`, as ``reset`` returns them: ``(obs, infos)``. The
        generators go on from there as they did after the original draw, so the steps that follow are the
        same too (the renders up to the floating-point determinism of the device)."""
        gens = state.get("generators") if isinstance(state, dict) else None
        if not isinstance(gens, list) or len(gens) != self.num_envs:
            raise InputError(f"an episode state of {self.num_envs} generators was expected, got "
                             f"{len(gens) if isinstance(gens, list) else type(state).__name__}")
        self._rngs, self._options = generators_at(gens), dict(state.get("options") or {})
        self._new_episodes()
        return self._obs, self._masked(self._reset_infos())

    def episode_sources(self) -> list[dict]:
        """Each current episode's generator state before its draw (after a redraw, before the last one): a
        few hundred bytes that stand for its observation, which :meth:`observations` draws again."""
        if self._episodes is None:
            raise RuntimeError("call reset() before episode_sources()")
        return [ep.source for ep in self._episodes]

    def observations(self, sources: list[dict]) -> np.ndarray:
        """uint8 ``[len(sources), h, w, 3]``: the observations of the episodes of :meth:`episode_sources`,
        drawn again under this env's reset options, without a render (:meth:`EnvCore.observations`)."""
        return self.core.observations(sources, self._options)

    def render(self):
        """A tuple of per-env panels (bicubic | SR with the last actions | SR with the true kernel | HR)
        of the *current* episodes; the SR-with-action tile is blank until they are stepped."""
        if self.render_mode is None:
            return None
        if self._episodes is None:
            raise RuntimeError("call reset() before render()")
        c = self.core
        return tuple(c.panel(self._lr[i:i + 1], None, None if self._sr_gt is None else self._sr_gt[i:i + 1],
                             None if self._hr is None else self._hr[i:i + 1]) for i in range(self.num_envs))

    def final_panels(self, n: int = 4) -> np.ndarray:
        """uint8 HWC: one row per finished episode of the last ``step`` (the first ``n``): bicubic | SR with
        the action | SR with the true kernel | HR. For TensorBoard image summaries."""
        if getattr(self, "_final", None) is None:
            raise RuntimeError("call step() before final_panels()")
        lr, sr, sr_gt, hr = self._final
        c = self.core
        rows = [c.panel(lr[i:i + 1], sr[i:i + 1], None if sr_gt is None else sr_gt[i:i + 1],
                        None if hr is None else hr[i:i + 1]) for i in range(min(n, self.num_envs))]
        return np.concatenate(rows, axis=0)

    def close_extras(self, **kwargs):
        self._episodes = None

    # -- helpers ----------------------------------------------------------------------------
    def _new_episodes(self, batch=None, drawn_from: list[dict] | None = None):
        """The next episodes: ``batch``, drawn from the generators at ``drawn_from``, or drawn now."""
        if batch is None:
            drawn_from = [r.bit_generator.state for r in self._rngs]
        b = batch if batch is not None else self.core.new_batch(self._rngs, self._options)
        self._drawn_from = drawn_from
        self._episodes, self._lr, self._hr, self._codes_gt = b.episodes, b.lr, b.hr, b.codes_gt
        self._sr_gt, self._baseline, self._psnr_gt = b.sr_gt, b.baseline, b.psnr_gt
        self._obs = to_uint8(self._lr)  # the observations, converted (and moved to the CPU) once

    def _reset_infos(self) -> dict:
        """The reset infos of all sub-envs as arrays (Gymnasium's vector-info layout), built in one pass."""
        eps = self._episodes
        info: dict = {"image_index": np.array([ep.image_index for ep in eps], dtype=np.int64)}
        keys = list(eps[0].params)
        if all(list(ep.params) == keys for ep in eps):
            info.update({k: np.array([ep.params[k] for ep in eps], dtype=np.float64) for k in keys})
        else:  # sub-envs whose kernels have different parameters: per-env, as Gymnasium merges them
            for i, ep in enumerate(eps):
                info = self._add_info(info, dict(ep.params), i)
        if self._codes_gt is not None:
            info["code_gt"] = self._codes_gt.cpu().numpy().copy()
            info["action_gt"] = self.core.codec.code_to_action(self._codes_gt).cpu().numpy().copy()
        if self._baseline is not None:
            info["baseline"] = {k: v.double().cpu().numpy() for k, v in self._baseline.items()}
        return info

    def _masked(self, info: dict) -> dict:
        """``info`` with the ``_key`` masks Gymnasium's ``_add_info`` gives keys that every sub-env has."""
        out = {}
        for k, v in info.items():
            if k.startswith("_"):
                out[k] = v
                continue
            out[k] = self._masked(v) if isinstance(v, dict) else v
            out.setdefault(f"_{k}", np.ones(self.num_envs, dtype=bool))
        return out
