"""Stable-Baselines3 on the blind-SR environments: a VecEnv adapter, a features extractor, a callback.

    blindsr-gym train --env BlindSR-PSNR-v0 --algo sb3:td3 --steps 20000 --logdir runs/td3

* :class:`SB3VecEnv` lets SB3 step the batched :class:`~blindsr_gym.envs.BlindSRVectorEnv` (one
  renderer pass for all N envs). Every episode is one step, so every step is ``done`` and carries
  the finished episode's observation as ``info["terminal_observation"]``, as SB3 expects.
* :class:`LRFeaturesExtractor`: strided convolutions over the LR image, global average pooling and
  a linear layer; it sizes itself from a sample observation, so any ``lr_size`` works.
* :class:`BlindSRCallback` logs the env's figures under the same ``charts/`` and ``eval/`` tags as our
  DDPG, and evaluates the deterministic policy on fixed, seeded validation episodes.
* :class:`SourcedReplayBuffer`, the off-policy algorithms' buffer: SB3's, which also keeps each transition's
  episode source, so that its pickle (``save_replay_buffer``) holds those instead of the images.
* :func:`make_model` builds TD3, SAC, DDPG or PPO with that extractor and buffer sizes that fit in
  memory (image observations: 12 KB each at 64x64).
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv

from blindsr_gym.errors import InputError
from blindsr_gym.training import stop_requested, stoppable

from .rollouts import check_redrawn, eval_media, evaluate_policy, image_checks, rollout_logs, warn_inexact

ALGOS = ("td3", "sac", "ddpg", "ppo")


class SB3VecEnv(VecEnv):
    """SB3's ``VecEnv`` interface over a :class:`BlindSRVectorEnv`."""

    def __init__(self, venv):
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions = None

    def reset(self):
        seeds = self._seeds
        seed = None if all(s is None for s in seeds) else [s for s in seeds]
        obs, _ = self.venv.reset(seed=seed, options=self._options[0] or None)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32)

    def step_wait(self):
        sources = self.venv.episode_sources()  # the episodes this step finishes, for SourcedReplayBuffer
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        fi = info["final_info"]
        infos = []
        for i in range(self.num_envs):
            d = {"terminal_observation": info["final_obs"][i], "TimeLimit.truncated": bool(truncated[i]),
                 "episode_source": sources[i]}
            for k, v in fi.items():
                if k.startswith("_"):
                    continue
                d[k] = {kk: vv[i] for kk, vv in v.items() if not kk.startswith("_")} if isinstance(v, dict) else v[i]
            infos.append(d)
        self.last_info = info
        self.last_rewards = rewards
        return obs, rewards.astype(np.float32), terminated | truncated, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name, indices=None):
        return [getattr(self.venv, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [getattr(self.venv, method_name)(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._get_indices(indices)]

    def get_images(self):
        return list(self.venv.render() or [])


class SourcedReplayBuffer(ReplayBuffer):
    """SB3's replay buffer, keeping also each transition's episode source (``info["episode_source"]``, which
    :class:`SB3VecEnv` gives: the sub-env's generator state its observation was drawn from).

    When every stored transition has one and its next observation is its observation (a one-step episode's
    terminal observation is the episode's image), the pickle holds the sources and a CRC-32 and pixel sum per
    image instead of the images, twice 12 KB a transition at 64x64: a 20,000-transition buffer shrinks from
    about 470 MiB to a few MiB (``benchmarks/ddpg_state.py`` measures the same for our DDPG's buffer), small
    enough to come back from a GPU lease. Such a buffer is unpickled without its images, and
    :meth:`redraw` draws them again from the env (:func:`train_sb3` does so on ``--resume``); anything else is
    pickled with its images, as SB3's own buffer is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = np.full((self.buffer_size, self.n_envs), None, dtype=object)
        self.checks = np.zeros((self.buffer_size, self.n_envs, 2), np.int64)
        self.images_missing = False

    def add(self, obs, next_obs, action, reward, done, infos) -> None:
        row = self.pos
        super().add(obs, next_obs, action, reward, done, infos)
        sources = [info.get("episode_source") for info in infos]
        self.sources[row] = sources
        if all(src is not None for src in sources):
            self.checks[row] = image_checks(self.observations[row])

    def sample(self, batch_size: int, env=None):
        if self.images_missing:
            raise InputError("this replay buffer was unpickled without its images: call "
                             "redraw(env.observations) first (train_sb3 does so on --resume)")
        return super().sample(batch_size, env=env)

    def _stored(self) -> int:
        return self.buffer_size if self.full else self.pos

    def __getstate__(self):
        state = self.__dict__.copy()
        n = self._stored()
        if (n and all(src is not None for src in self.sources[:n].ravel())
                and not self.optimize_memory_usage
                and np.array_equal(self.observations[:n], self.next_observations[:n])):
            state["observations"] = state["next_observations"] = None
            state["images_missing"] = True
        return state

    def redraw(self, observations) -> dict:
        """``observations(sources) -> uint8 [n, H, W, 3]`` (the env's
        :meth:`~blindsr_gym.envs.BlindSRVectorEnv.observations`) draws the images of an unpickled buffer again.
        Returns ``{"regenerated": n, "inexact": m}`` (m not byte-identical: another device's rounding); raises
        :class:`InputError` when an image is not the one saved (another dataset)."""
        if not self.images_missing:
            return {"regenerated": 0, "inexact": 0}
        n = self._stored()
        images = np.asarray(observations(self.sources[:n].ravel().tolist()))
        if images.shape[1:] != self.obs_shape:  # SB3 stores images channels-first (VecTransposeImage)
            images = images.transpose(0, 3, 1, 2)
        if images.shape[1:] != self.obs_shape:
            raise InputError(f"the env draws images of shape {images.shape[1:]}, this buffer holds {self.obs_shape}")
        inexact = check_redrawn(images, self.checks[:n].reshape(-1, 2))
        self.observations = np.zeros((self.buffer_size, self.n_envs, *self.obs_shape), self.observation_space.dtype)
        self.observations[:n] = images.reshape(n, self.n_envs, *self.obs_shape)
        self.next_observations = self.observations.copy()
        self.images_missing = False
        return {"regenerated": n * self.n_envs, "inexact": inexact}


class LRFeaturesExtractor(BaseFeaturesExtractor):
    """Convs (stride 2) -> global average pooling -> linear -> ReLU. Input: float NCHW in [0, 1]
    (SB3 transposes and scales the uint8 HWC observations)."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128, widths=(32, 64, 64, 128)):
        super().__init__(observation_space, features_dim)
        layers, c = [], observation_space.shape[0]
        for w in widths:
            layers += [torch.nn.Conv2d(c, w, 3, stride=2, padding=1), torch.nn.ReLU()]
            c = w
        self.cnn = torch.nn.Sequential(*layers)
        with torch.no_grad():  # size the head from a sample observation
            sample = torch.as_tensor(observation_space.sample()[None]).float()
            n = self.cnn(sample).mean(dim=(2, 3)).shape[1]
        self.linear = torch.nn.Sequential(torch.nn.Linear(n, features_dim), torch.nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(obs).mean(dim=(2, 3)))


class BlindSRCallback(BaseCallback):
    """Logs ``charts/`` from every batched step and ``eval/`` every ``eval_freq`` env steps."""

    def __init__(self, eval_env=None, eval_seed: int = 1_000_000, eval_freq: int = 10_000, verbose: int = 0):
        super().__init__(verbose)
        self.eval_env, self.eval_seed, self.eval_freq = eval_env, eval_seed, eval_freq
        self.last_eval: dict | None = None
        self.history: list[dict] = []
        self._next_eval = eval_freq

    def _on_step(self) -> bool:
        env = self.training_env
        while hasattr(env, "venv") and not isinstance(env, SB3VecEnv):
            env = env.venv
        if isinstance(env, SB3VecEnv) and getattr(env, "last_info", None) is not None:
            for k, v in rollout_logs(env.last_rewards, env.last_info).items():
                self.logger.record(k, v)
        if self.eval_env is not None and self.num_timesteps >= self._next_eval:
            self.run_eval()
            self._next_eval += self.eval_freq
        return True

    def run_eval(self) -> dict:
        def act(obs):
            return self.model.predict(obs.transpose(0, 3, 1, 2), deterministic=True)[0]

        details: dict = {}
        self.last_eval = evaluate_policy(act, self.eval_env, self.eval_seed, details)
        from stable_baselines3.common.logger import Image

        media = {"stdout", "log", "json", "csv"}  # histograms and images go to TensorBoard only
        for tag, values in eval_media(details).items():
            self.logger.record(tag, torch.as_tensor(values), exclude=media)
        self.logger.record("eval/panels", Image(details["panels"], "HWC"), exclude=media)
        if self.history and self.history[-1]["env_steps"] == self.num_timesteps:
            # the final evaluation after learn() sees the updates made since the last callback at the
            # same env-step count (e.g. PPO trains after its rollout): it replaces that point
            self.history.pop()
        self.history.append({"env_steps": int(self.num_timesteps), **self.last_eval})
        for k, v in self.last_eval.items():
            self.logger.record(f"eval/{k}", v)
        return self.last_eval


def make_model(algo: str, env: SB3VecEnv, seed: int = 0, device: str = "auto", tensorboard_log: str | None = None,
               buffer_size: int = 20_000, features_dim: int = 128, **kwargs):
    """An SB3 model with :class:`LRFeaturesExtractor`. ``algo``: td3, sac, ddpg, ppo."""
    import stable_baselines3 as sb3

    algo = algo.lower().removeprefix("sb3:")
    if algo not in ALGOS:
        raise InputError(f"unknown SB3 algorithm {algo!r}; choose one of {', '.join('sb3:' + a for a in ALGOS)}")
    cls = {"td3": sb3.TD3, "sac": sb3.SAC, "ddpg": sb3.DDPG, "ppo": sb3.PPO}[algo]
    policy_kwargs = dict(features_extractor_class=LRFeaturesExtractor,
                         features_extractor_kwargs=dict(features_dim=features_dim))
    if algo != "ppo":
        policy_kwargs["share_features_extractor"] = False
        kwargs.setdefault("buffer_size", buffer_size)
        kwargs.setdefault("replay_buffer_class", SourcedReplayBuffer)
        kwargs.setdefault("learning_starts", min(1000, buffer_size // 4))
        kwargs.setdefault("gamma", 0.0)  # one-step episodes: nothing to bootstrap
        if algo == "sac":
            kwargs.setdefault("ent_coef", "auto")
    else:
        kwargs.setdefault("n_steps", max(1, 512 // env.num_envs))
        kwargs.setdefault("batch_size", 64)
        kwargs.setdefault("gamma", 0.0)
    return cls("CnnPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device=device,
               tensorboard_log=tensorboard_log, verbose=0, **kwargs)


@stoppable
def train_sb3(algo: str, env_id: str, steps: int, logdir: str | Path, num_envs: int = 16,
              env_kwargs: dict | None = None, eval_env_kwargs: dict | None = None, eval_episodes: int = 64,
              eval_freq: int | None = None,
              seed: int = 0, device: str = "auto", resume: bool = False, progress: bool = True,
              ckpt_freq: int | None = None, **algo_kwargs) -> dict:
    """Train an SB3 algorithm for ``steps`` env steps (episodes). Checkpoints (model and replay
    buffer) go to ``logdir``; ``resume=True`` continues from the last one.

    The run's configuration is stored in ``logdir/sb3_config.json``; a resume that changes anything but
    ``steps``, the device, the data folders or the validation is refused. Ctrl-C or SIGTERM ends ``learn`` after
    the env step under way and saves the checkpoint there (``stopped_by`` names the signal). SB3 checkpoints are pickles
    (cloudpickle): resume only run folders you trust, since loading one can run code.
    """
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback

    from blindsr_gym.fileio import atomic_path, write_text
    from blindsr_gym.training import ResumeError, check_resume_config
    from blindsr_gym.utils import resolve_device

    from .rollouts import make_vec_env

    logdir = Path(logdir)
    dev = resolve_device(device)
    env_kwargs = dict(env_kwargs or {})
    env_kwargs.setdefault("device", str(dev))
    venv = make_vec_env(env_id, num_envs, **env_kwargs)
    env = SB3VecEnv(venv)
    env.seed(seed)
    eval_kwargs = dict(env_kwargs, **(eval_env_kwargs or {}), renderer=venv.core.renderer)
    eval_env = make_vec_env(env_id, eval_episodes, **eval_kwargs)
    eval_freq = eval_freq or max(steps // 10, num_envs)
    ckpt_freq = ckpt_freq or max(steps // 10, num_envs)
    algo_name = algo.lower().removeprefix("sb3:")
    model_path = logdir / "sb3_model.zip"
    buffer_path = logdir / "sb3_replay_buffer.pkl"
    config_path = logdir / "sb3_config.json"
    config = {"algo": algo_name, "env_id": env_id, "num_envs": num_envs, "seed": seed,
              "env_kwargs": {k: str(v) for k, v in env_kwargs.items()},
              "algo_kwargs": {k: str(v) for k, v in algo_kwargs.items()}}
    if resume:
        if not model_path.is_file():
            raise FileNotFoundError(f"--resume: no SB3 checkpoint at {model_path}")
        if not config_path.is_file():
            raise ResumeError(f"--resume: {config_path} is missing, so the run's setting cannot be checked; start a "
                              "new --logdir")
        check_resume_config(json.loads(config_path.read_text()), config, ("env_kwargs.device", "env_kwargs.dataset"),
                            config_path, "--logdir")
        import stable_baselines3 as sb3

        cls = {"td3": sb3.TD3, "sac": sb3.SAC, "ddpg": sb3.DDPG, "ppo": sb3.PPO}[algo_name]
        model = cls.load(model_path, env=env, device=dev, tensorboard_log=str(logdir))
        if buffer_path.is_file() and hasattr(model, "load_replay_buffer"):
            model.load_replay_buffer(buffer_path)
            if isinstance(model.replay_buffer, SourcedReplayBuffer):
                rebuilt = model.replay_buffer.redraw(venv.observations)
                warn_inexact(rebuilt["inexact"], rebuilt["regenerated"])
    else:
        if model_path.exists():
            raise FileExistsError(f"{model_path} exists; pass --resume or choose another --logdir")
        model = make_model(algo_name, env, seed=seed, device=dev, tensorboard_log=str(logdir), **algo_kwargs)
        logdir.mkdir(parents=True, exist_ok=True)
        write_text(config_path, json.dumps(config, indent=2) + "\n")
    cb = BlindSRCallback(eval_env, eval_freq=eval_freq)
    cb._next_eval = model.num_timesteps + eval_freq

    class _Save(CheckpointCallback):
        def _on_step(self) -> bool:  # one file, overwritten: the latest state
            if self.n_calls % self.save_freq == 0:
                self._save()
            return stop_requested() is None  # False ends model.learn; the state is saved just below

        def _save(self):  # each file replaced whole: a killed run keeps the previous checkpoint
            with atomic_path(model_path) as tmp:
                self.model.save(tmp)
            if hasattr(self.model, "save_replay_buffer"):
                with atomic_path(buffer_path) as tmp:
                    self.model.save_replay_buffer(tmp)

    saver = _Save(save_freq=max(1, ckpt_freq // num_envs), save_path=str(logdir))
    remaining = max(0, steps - model.num_timesteps)
    import time

    t0 = time.perf_counter()
    callbacks = [cb, saver] + ([ProgressBar(f"sb3:{algo_name} {env_id}", steps)] if progress else [])
    model.learn(total_timesteps=remaining, callback=CallbackList(callbacks), reset_num_timesteps=not resume,
                tb_log_name=algo_name)
    saver._save()
    stopped_by = stop_requested()
    # a run stopped by a signal is not validated again (its last validation stands): it should end promptly
    final = cb.run_eval() if stopped_by is None else (cb.history[-1] if cb.history else None)
    wall = time.perf_counter() - t0
    from blindsr_gym.training import hardware_string

    from .sb3_actor import export_actor

    card = {"training": {"algorithm": f"Stable-Baselines3 {algo_name.upper()}", "env_id": env_id,
                         "env_kwargs": config["env_kwargs"], "algo_kwargs": config["algo_kwargs"],
                         "episodes": int(model.num_timesteps), "num_envs": num_envs, "seed": seed,
                         "wall_time_s": round(wall, 1), "device": str(dev), "hardware": hardware_string(dev),
                         **({"note": "wall time of the last (resumed) session only"} if resume else {})},
            "validation": final, "validation_history": cb.history}
    actor_path = export_actor(model, logdir / "actor.safetensors", codec=venv.core.codec, card=card)
    return {"algo": f"sb3:{algo_name}", "steps": model.num_timesteps, "wall_s": wall,
            "eval": final, "history": cb.history, "logdir": str(logdir), "actor": str(actor_path),
            "stopped_by": stopped_by, "state": str(model_path)}


class ProgressBar(BaseCallback):
    """A tqdm bar over env steps (the package's one progress-bar library; SB3's own bar uses rich)."""

    def __init__(self, desc: str, total: int):
        super().__init__()
        self.desc, self.total, self.bar = desc, total, None

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=self.num_timesteps, desc=self.desc, unit="step")

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()
