"""One-step DDPG for blind SR (AMNet-RL, Hui et al. 2021, Sec. 3.3), in one readable file.

An episode is one step, so there is no bootstrapping: the critic regresses the reward itself,
``y = r`` (Eq. 10 reduces to ``(r - Q)^2``). The paper's critic loss adds a sign penalty, so Q at
least gets the *sign* of the reward right (Eq. 11):

    L_Q = mean( max(0, -gamma_i * Q_i) + (r_i - Q_i)^2 ),   gamma_i = 1 if r_i > 0 else -1

The actor follows the deterministic policy gradient (Eq. 12), ``L_P = -mean Q(s, P(s))``.

Rollouts go through the batched vector env: every iteration plays ``num_envs`` episodes in one
renderer pass (Gaussian exploration noise on the actor's actions), stores them in a replay buffer,
and takes ``updates_per_iteration`` gradient steps on batches of ``batch_size``. Learning rates
decay exponentially from their start to ``lr_decay_to`` times it over the run (the paper: actor
1e-5, critic 1e-4, both to 1e-2 of that, batch 96, 5,000 iterations).

    blindsr-gym train --env BlindSR-PSNR-v0 --algo ddpg --steps 480000 --logdir runs/ddpg

Two options of this package for fine-tuning a pre-trained actor (``init_actor``), neither the
paper's: ``critic_encoder="actor"`` gives the critic a frozen copy of that actor as its image encoder
(:class:`~agents.networks.ActorFeatureCritic`), so the critic need not first learn to read the kernel;
``exploration="sigma"`` perturbs a sigma-head actor's width, ``sigma * exp(N(0, exploration_noise))``,
instead of its 15-D action, so every explored kernel is an isotropic Gaussian.

A third option, for the question of why the critic's slope misleads a pre-trained actor
(``scripts/critic_slope.py`` measures it): ``actor_gradient="env"`` takes the actor's slope from the env
instead of the critic. Every episode is played twice, at ``sigma * exp(u)`` and ``sigma * exp(-u)``, and the
actor ascends ``(r+ - r-) u / (2 noise^2)`` along log sigma, a finite-difference estimate of that episode's
own slope (the critic still learns, for its logs, but does not steer).

TensorBoard: ``losses/`` (critic, actor, q, and ``critic_r2``: the share of a batch's reward variance
the critic's Q explains), ``charts/`` (reward, metric, PSNR of the rollouts,
learning rates), ``eval/`` (the fixed validation episodes), and the hyper-parameter table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from blindsr_gym.errors import InputError
from blindsr_gym.training import adam, decayed, stop_requested, stoppable
from blindsr_gym.utils import to_device

from .networks import Actor, ActorFeatureCritic, Critic, obs_to_tensor
from .rollouts import (  # noqa: F401  (re-exported: the names predate agents/rollouts.py)
    check_redrawn,
    eval_media,
    evaluate_policy,
    image_checks,
    log_eval_media,
    make_vec_env,
    rollout_logs,
    torch_policy,
    warn_inexact,
)

CRITIC_LOSSES = ("eq11", "eq10")
CRITIC_ENCODERS = ("cnn", "actor")
EXPLORATIONS = ("action", "sigma")
ACTOR_GRADIENTS = ("critic", "env")
#: "env" replays each iteration's episodes from seed ENV_SLOPE_SEED * (seed + 1) + iteration * num_envs (far
#: from the validation seeds)
ENV_SLOPE_SEED = 100_000_000


def sign_penalized_critic_loss(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Eq. 11: ``mean(max(0, -gamma * q) + (r - q)^2)`` with ``gamma = 1 if r > 0 else -1``."""
    gamma = torch.where(r > 0, 1.0, -1.0).to(q.dtype)
    return (F.relu(-gamma * q) + (r - q) ** 2).mean()


def mse_critic_loss(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Eq. 10 for one-step episodes (target = r): ``mean((r - q)^2)``."""
    return ((r - q) ** 2).mean()


#: What ``--resume`` may change besides blindsr_gym.training.RESUME_ALLOWED: a longer run, the validation
#: episodes, and the env's device, data folder, CUDA graphs and compilation (how the renders run); never its
#: renderer, metric, crop size or number of envs.
RESUME_ALLOWED = ("iterations", "eval_episodes", "eval_seed", "eval_env_kwargs", "env_kwargs.device",
                  "env_kwargs.dataset", "env_kwargs.cuda_graphs", "env_kwargs.compile")

@dataclass
class DDPGConfig:
    env_id: str = "BlindSR-PSNR-v0"
    env_kwargs: dict = field(default_factory=dict)  # passed to gym.make_vec (renderer, dataset, metric, ...)
    eval_env_kwargs: dict = field(default_factory=dict)  # overrides for the validation env (e.g. dataset)
    num_envs: int = 96  # episodes per iteration (one batched env step)
    iterations: int = 5000
    batch_size: int = 96
    updates_per_iteration: int = 1  # actor steps per iteration (after the warm-up)
    critic_updates: int = 1  # critic steps (each on its own batch) per actor step; also during the warm-up
    actor_lr: float = 1e-5
    critic_lr: float = 1e-4
    lr_decay_to: float = 1e-2  # both rates decay exponentially to this fraction of their start
    critic_loss: str = "eq11"  # "eq11" (sign-penalised, the paper's) or "eq10" (plain squared error)
    exploration_noise: float = 0.1  # std of the Gaussian noise: on actions in [-1, 1], or on log sigma
    exploration: str = "action"  # "action": noise on the 15-D action; "sigma" (sigma-head actors): on log sigma,
    #                              so explored actions stay on the isotropic family's curve
    critic_encoder: str = "cnn"  # "cnn": Critic, learnt from scratch; "actor": ActorFeatureCritic on a frozen
    #                              copy of init_actor (it already reads the kernel from the image)
    buffer_size: int = 20_000
    eval_every: int = 250
    eval_episodes: int = 64
    eval_seed: int = 1_000_000
    ckpt_every: int = 250
    seed: int = 0
    device: str = "auto"
    init_actor: str | None = None  # a pre-trained actor (agents/pretrain.py) to start from
    critic_warmup: int = 0  # iterations at the start in which only the critic learns (the actor is held)
    actor_kwargs: dict = field(default_factory=dict)
    actor_gradient: str = "critic"  # "critic": Eq. 12, dQ/da; "env" (sigma-head actors, exploration "sigma"):
    #                                 the env's own slope along log sigma, from each episode played at two widths

    def __post_init__(self):
        if self.critic_loss not in CRITIC_LOSSES:
            raise InputError(f"critic_loss must be one of {CRITIC_LOSSES}, got {self.critic_loss!r}")
        if self.critic_encoder not in CRITIC_ENCODERS:
            raise InputError(f"critic_encoder must be one of {CRITIC_ENCODERS}, got {self.critic_encoder!r}")
        if self.critic_encoder == "actor" and not self.init_actor:
            raise InputError("critic_encoder='actor' needs init_actor: the critic reads images through a frozen "
                             "copy of the pre-trained actor")
        if self.exploration not in EXPLORATIONS:
            raise InputError(f"exploration must be one of {EXPLORATIONS}, got {self.exploration!r}")
        if self.actor_gradient not in ACTOR_GRADIENTS:
            raise InputError(f"actor_gradient must be one of {ACTOR_GRADIENTS}, got {self.actor_gradient!r}")
        if self.actor_gradient == "env" and (self.exploration != "sigma" or not self.exploration_noise > 0):
            raise InputError("actor_gradient='env' measures the slope along the width: it needs exploration='sigma' "
                             "and exploration_noise > 0")
        for name in ("num_envs", "iterations", "batch_size", "updates_per_iteration", "critic_updates", "buffer_size",
                     "eval_every", "eval_episodes", "ckpt_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.critic_warmup, int) or not 0 <= self.critic_warmup <= self.iterations:
            raise InputError(f"critic_warmup must be an integer in [0, iterations], got {self.critic_warmup!r}")
        if not 0 < self.lr_decay_to <= 1:
            raise InputError(f"lr_decay_to must be in (0, 1], got {self.lr_decay_to!r}")
        if self.exploration_noise < 0:
            raise InputError(f"exploration_noise must be >= 0, got {self.exploration_noise!r}")


class ReplayBuffer:
    """A ring buffer of one-step transitions ``(obs uint8 HWC, action, reward)``, and with
    ``feature_dim`` the observation's features under a frozen encoder (computed once, when added).

    With ``sources`` (the env's :meth:`~blindsr_gym.envs.BlindSRVectorEnv.episode_sources`), each transition also
    keeps its episode's generator state, and :meth:`state_dict` stores those instead of the images: a few hundred
    bytes a transition instead of its 12 KB image (``benchmarks/ddpg_state.py`` measures both), so that a run's
    state can travel back from a GPU lease. A resume draws the images again (:meth:`load_state_dict` with
    ``regenerate``) and checks each against the CRC-32 and the pixel sum kept when it was added."""

    def __init__(self, capacity: int, obs_shape: tuple, action_dim: int, feature_dim: int = 0):
        self.obs = np.zeros((capacity, *obs_shape), np.uint8)
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.features = np.zeros((capacity, feature_dim), np.float32) if feature_dim else None
        self.sources: list[dict | None] = [None] * capacity
        self.checks = np.zeros((capacity, 2), np.int64)  # per image: CRC-32 and pixel sum, for a regeneration
        self.capacity, self.pos, self.size = capacity, 0, 0

    def add(self, obs, actions, rewards, features=None, sources=None):
        if (features is None) != (self.features is None):
            raise InputError("features must be given exactly when the buffer was built with feature_dim")
        if sources is not None and len(sources) != len(obs):
            raise InputError(f"got {len(sources)} sources for {len(obs)} observations")
        for i, (o, a, r) in enumerate(zip(obs, actions, rewards, strict=True)):
            self.obs[self.pos], self.actions[self.pos], self.rewards[self.pos] = o, a, r
            if features is not None:
                self.features[self.pos] = features[i]
            self.sources[self.pos] = None if sources is None else sources[i]
            if sources is not None:
                self.checks[self.pos] = image_checks(self.obs[self.pos][None])[0]
            self.pos = (self.pos + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, n: int):
        """``(obs, actions, rewards)``, plus the features when the buffer keeps them."""
        idx = rng.integers(self.size, size=n)
        out = (self.obs[idx], self.actions[idx], self.rewards[idx])
        return out if self.features is None else (*out, self.features[idx])

    def state_dict(self):
        """The transitions; the images as their sources when every one has a source, else as pixels."""
        n = self.size
        sd = {"actions": torch.from_numpy(self.actions[:n].copy()),
              "rewards": torch.from_numpy(self.rewards[:n].copy()), "pos": self.pos}
        if all(src is not None for src in self.sources[:n]):
            sd["sources"] = json.dumps(self.sources[:n])
            sd["checks"] = torch.from_numpy(self.checks[:n].copy())
        else:
            sd["obs"] = torch.from_numpy(self.obs[:n].copy())
        if self.features is not None:
            sd["features"] = torch.from_numpy(self.features[:n].copy())
        return sd

    def load_state_dict(self, sd, regenerate=None) -> dict:
        """``regenerate(sources) -> uint8 images``: draws a state's images again from their sources (the env's
        ``observations``); needed for a state saved with sources. Returns ``{"regenerated": n, "inexact": m}``:
        m images came back not byte-identical (another device's rounding). Raises :class:`InputError` when an
        image is not the one saved (the dataset, or the env's draws, changed)."""
        n = len(sd["rewards"])
        if n > self.capacity:
            raise InputError(f"checkpoint buffer holds {n} transitions, more than buffer_size={self.capacity}")
        if ("features" in sd) != (self.features is not None):
            raise InputError("checkpoint buffer and this run disagree on whether features are kept")
        report = {"regenerated": 0, "inexact": 0}
        if "obs" in sd:
            self.obs[:n] = sd["obs"].numpy()
            self.sources[:n] = [None] * n
        else:
            if regenerate is None:
                raise InputError("this buffer state keeps its episodes' sources, not their images: "
                                 "load it with regenerate (the env's observations)")
            sources, checks = json.loads(sd["sources"]), sd["checks"].numpy()
            self.obs[:n] = regenerate(sources)
            inexact = check_redrawn(self.obs[:n], checks)
            self.sources[:n], self.checks[:n] = sources, checks
            report = {"regenerated": n, "inexact": inexact}
        self.actions[:n], self.rewards[:n] = sd["actions"].numpy(), sd["rewards"].numpy()
        if self.features is not None:
            self.features[:n] = sd["features"].numpy()
        self.size, self.pos = n, int(sd["pos"]) % self.capacity
        return report


class DDPGUpdate:
    """One learning step of one-step DDPG on replayed transitions: ``critic_updates`` critic steps on the
    reward (Eq. 10 or the sign-penalised Eq. 11), each on its own batch, then, unless held, one actor step
    on the deterministic policy gradient (Eq. 12). A critic reading through a frozen actor
    (:class:`ActorFeatureCritic`) takes its features from the buffer and never reads the images."""

    def __init__(self, actor, critic, opt_actor, opt_critic, critic_loss: str, device):
        self.actor, self.critic, self.opt_a, self.opt_c, self.device = actor, critic, opt_actor, opt_critic, device
        self.loss_fn = sign_penalized_critic_loss if critic_loss == "eq11" else mse_critic_loss
        self.frozen = isinstance(critic, ActorFeatureCritic)

    def update(self, sample, critic_updates: int, train_actor: bool) -> dict[str, float]:
        """``sample() -> (obs, actions, rewards[, features])``, a fresh batch per critic step."""
        logs = {}
        for _ in range(critic_updates):
            o, act, r, *f = sample()
            act_t, r_t = to_device(torch.from_numpy(act), self.device), to_device(torch.from_numpy(r), self.device)
            # a frozen encoder's features come from the buffer, and serve the actor's step too; the
            # critic then never reads the images, so only the actor's step converts them
            enc = self.critic.from_pooled(to_device(torch.from_numpy(f[0]), self.device)) if self.frozen else None
            s = None if self.frozen else obs_to_tensor(o, self.device)
            q = self.critic(s, act_t, enc=enc)
            loss_c = self.loss_fn(q, r_t)
            self.opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            self.opt_c.step()
        if train_actor:  # a pre-trained actor waits until Q means something
            if s is None:
                s = obs_to_tensor(o, self.device)
            loss_a = -self.critic(s, self.actor(s), enc=enc).mean()
            self.opt_a.zero_grad(set_to_none=True)
            loss_a.backward()
            self.opt_a.step()
            logs["losses/actor"] = loss_a.detach()
        # the critic's fit on its last batch: the share of the rewards' variance its Q explains
        r2 = 1 - ((r_t - q.detach()) ** 2).mean() / r_t.var(unbiased=False).clamp_min(1e-12)
        logs.update({"losses/critic": loss_c.detach(), "losses/q": q.detach().mean(), "losses/critic_r2": r2})
        values = torch.stack([v.float() for v in logs.values()]).tolist()  # one wait for the device, not four
        return dict(zip(logs, values, strict=True))


@stoppable
def train_ddpg(cfg: DDPGConfig, logdir: str | Path, resume: bool = False, progress: bool = True,
               stop_after: int | None = None, time_budget: float | None = None) -> dict:
    """Train; returns the last evaluation. Checkpoints to ``logdir/ddpg_state.pt``; the actor also
    to ``logdir/actor.safetensors`` (+ model card). ``stop_after``: stop at the first checkpoint after this
    many iterations of this call (a run split over leases or sessions); ``resume`` then continues it
    exactly as if it had not stopped. ``time_budget`` (seconds): stop at the first checkpoint after it has
    passed. Ctrl-C or SIGTERM: a checkpoint at the iteration under way, with the env's episode state, then stop
    (``stopped_by`` names the signal); a resume from it goes on as the uninterrupted run does."""
    from blindsr_gym.training import Run
    from blindsr_gym.utils import resolve_device

    from . import save_actor

    logdir = Path(logdir)
    device = resolve_device(cfg.device)
    run = Run(logdir, "ddpg_state.pt", asdict(cfg), RESUME_ALLOWED, resume=resume, flag="--logdir",
              defaults=asdict(DDPGConfig()), time_budget=time_budget)
    state = run.state

    env_kwargs = dict(cfg.env_kwargs)
    env_kwargs.setdefault("device", str(device))
    env = make_vec_env(cfg.env_id, cfg.num_envs, **env_kwargs)
    eval_kwargs = dict(env_kwargs, **cfg.eval_env_kwargs, renderer=env.core.renderer)
    eval_env = make_vec_env(cfg.env_id, cfg.eval_episodes, **eval_kwargs)
    code_len = env.single_action_space.shape[0]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        actor = Actor(code_len=code_len, **cfg.actor_kwargs).to(device)
        critic = Critic(code_len=code_len).to(device)
    if cfg.init_actor and state is not None and "actor_config" in state:
        # a resume builds the actor from the configuration in its state and takes every weight from there: the
        # init file need not be at hand (nor travel to a GPU lease)
        actor = Actor(**json.loads(state["actor_config"])).to(device)
    elif cfg.init_actor:  # the pre-trained actor with its own configuration (a sigma head stays a sigma head)
        from . import load_actor

        init = load_actor(cfg.init_actor, codec=env.core.codec)
        clash = [f"{k}={v!r} (the checkpoint has {init.config.get(k)!r})" for k, v in cfg.actor_kwargs.items()
                 if init.config.get(k) != v]
        if clash:
            raise InputError(f"init_actor {cfg.init_actor} does not match actor_kwargs: {', '.join(clash)}")
        actor = init.to(device).requires_grad_(True).train()
    if cfg.init_actor and cfg.critic_encoder == "actor":
        with torch.random.fork_rng(devices=[]):  # its MLP's first weights from the run's seed, not the process's
            torch.manual_seed(cfg.seed)        # random state (before 2026-11-29 every seed drew the same ones)
            critic = ActorFeatureCritic(actor).to(device)
    if cfg.exploration == "sigma" and actor.head_kind != "sigma":
        raise InputError("exploration='sigma' needs a sigma-head actor (init_actor with head='sigma')")
    opt_a = adam(actor.parameters(), cfg.actor_lr, device)
    opt_c = adam(critic.parameters(), cfg.critic_lr, device)
    learner = DDPGUpdate(actor, critic, opt_a, opt_c, cfg.critic_loss, device)
    frozen = learner.frozen  # its image features are kept in the buffer
    buffer = ReplayBuffer(cfg.buffer_size, env.single_observation_space.shape, code_len,
                          feature_dim=critic.encoder.config["channels"] if frozen else 0)
    rng = np.random.default_rng([cfg.seed, 7])
    start, last_eval, history = 0, None, []
    if state is not None:
        actor.load_state_dict(state["actor"])
        critic.load_state_dict(state["critic"])
        opt_a.load_state_dict(state["opt_actor"])
        opt_c.load_state_dict(state["opt_critic"])
        rebuilt = buffer.load_state_dict(state["buffer"], regenerate=env.observations)
        warn_inexact(rebuilt["inexact"], rebuilt["regenerated"])
        rng.bit_generator.state = json.loads(state["rng"])
        start, last_eval = state["iteration"], state.get("last_eval")
        history = state.get("history", [])
    # the env is re-seeded from the iteration at the start and after every periodic checkpoint, so that a resumed
    # run draws exactly the episodes the uninterrupted one does; a checkpoint a signal asked for between two of
    # them keeps the env's episode state instead, and the resume draws those episodes again
    if state is not None and state.get("episodes"):
        obs, _ = env.restore_episodes(json.loads(state["episodes"]))
    else:
        obs, _ = env.reset(seed=cfg.seed + start)

    per_iteration = cfg.num_envs * (2 if cfg.actor_gradient == "env" else 1)  # episodes rendered per iteration
    writer = run.writer(start * per_iteration)  # the points are logged at episode counts
    if start == 0:
        writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" + "\n".join(
            f"|{k}|{v}|" for k, v in asdict(cfg).items()))
    bar = run.progress(progress, cfg.iterations, start, f"ddpg {cfg.env_id}")

    def card_for(it, note=None):
        algorithm = (f"one-step DDPG, critic loss {cfg.critic_loss}" if cfg.actor_gradient == "critic" else
                     f"one-step DDPG with the env's slope as the actor's gradient (critic loss {cfg.critic_loss}, "
                     "for its logs)")
        return {"training": {"algorithm": algorithm, "env_id": cfg.env_id,
                             "env_kwargs": {k: str(v) for k, v in env_kwargs.items()},
                             "eval_env_kwargs": {k: str(v) for k, v in cfg.eval_env_kwargs.items()},
                             "init_actor": cfg.init_actor, "iterations": it, "episodes": it * per_iteration,
                             "num_envs": cfg.num_envs, "batch_size": cfg.batch_size, "actor_lr": cfg.actor_lr,
                             "critic_lr": cfg.critic_lr, "exploration_noise": cfg.exploration_noise,
                             "critic_warmup": cfg.critic_warmup, "critic_encoder": cfg.critic_encoder,
                             "updates_per_iteration": cfg.updates_per_iteration, "critic_updates": cfg.critic_updates,
                             "exploration": cfg.exploration, "actor_gradient": cfg.actor_gradient,
                             "seed": cfg.seed, "device": str(device),
                             **run.card(device),
                             **({"note": note} if note else {})},
                "validation": last_eval, "validation_history": history}

    def checkpoint(it, episodes=None):
        run.save_state({"actor": actor.state_dict(), "critic": critic.state_dict(), "opt_actor": opt_a.state_dict(),
                  "opt_critic": opt_c.state_dict(), "buffer": buffer.state_dict(),
                  "rng": json.dumps(rng.bit_generator.state), "actor_config": json.dumps(actor.config),
                  "iteration": it, "last_eval": last_eval,
                  "history": history, **({"episodes": json.dumps(episodes)} if episodes else {})})
        save_actor(actor, logdir / "actor.safetensors", codec=env.core.codec, card=card_for(it))

    def sample():
        return buffer.sample(rng, cfg.batch_size)

    def env_slope_step(it):
        """actor_gradient="env": this iteration's episodes, each played at ``sigma * exp(u)`` and
        ``sigma * exp(-u)`` (``u ~ N(0, noise)``, the same episode twice: the env is reset to one seed
        before each pass). ``(r+ - r-) u / (2 noise^2)`` estimates, per episode, the slope of the expected
        reward along log sigma (antithetic Gaussian smoothing); the actor ascends it. Both transitions go
        to the buffer, so the critic still learns (and logs its fit) but does not steer the actor."""
        seed = ENV_SLOPE_SEED * (cfg.seed + 1) + it * cfg.num_envs
        obs0, _ = env.reset(seed=seed)
        sources = env.episode_sources()
        x = obs_to_tensor(obs0, device)
        u = to_device(torch.from_numpy(rng.normal(0, cfg.exploration_noise, len(x)).astype(np.float32)), device)
        sigma = actor.sigma(x)  # one forward: its values choose the widths, its graph takes the actor's step
        with torch.no_grad():
            feats = critic.encoder.pooled(x).cpu().numpy() if frozen else None
        rewards, logs = [], {}
        for sign in (1.0, -1.0):
            with torch.no_grad():
                a = actor.sigma_to_action(sigma.detach() * (sign * u).exp()).clamp(-1, 1).cpu().numpy()
            if sign < 0:
                env.reset(seed=seed)
            _, r, _, _, info = env.step(a)
            buffer.add(obs0, a, r, features=feats, sources=sources)
            rewards.append(np.asarray(r, dtype=np.float32))
            logs.update({k: (v + logs[k]) / 2 if k in logs else v for k, v in rollout_logs(r, info).items()})
        if it >= cfg.critic_warmup:
            slope = to_device(torch.from_numpy(rewards[0] - rewards[1]), device) * u / (2 * cfg.exploration_noise ** 2)
            loss_a = -(slope * sigma.log()).mean()
            opt_a.zero_grad(set_to_none=True)
            loss_a.backward()
            opt_a.step()
            actor_loss, mean_slope = torch.stack([loss_a.detach(), slope.mean()]).tolist()  # one wait, not two
            logs.update({"losses/actor": actor_loss, "losses/env_slope": mean_slope})
        return logs

    def validate(done, episodes, panels=True):
        nonlocal last_eval
        actor.eval()
        details: dict = {}
        last_eval = evaluate_policy(torch_policy(actor), eval_env, cfg.eval_seed, details)
        log_eval_media(writer, details, episodes, actor, panels=panels)
        actor.train()
        history.append({"env_steps": episodes, "wall_s": round(run.wall, 2), **last_eval})
        for k, v in last_eval.items():
            writer.add_scalar(f"eval/{k}", v, episodes)

    if start == 0 and cfg.init_actor:  # where a pre-trained actor starts: what the run has to beat
        validate(0, 0)

    # the validation panels (a PNG of over a megabyte each time) at about ten validations of the run, so that a
    # run validated often keeps a small event file: it travels back from a GPU lease with the run's state
    panel_every = max(1, -(-cfg.iterations // cfg.eval_every) // 10)
    run.restart_clock()
    done, stopped_by = start, None
    for it in range(start, cfg.iterations):
        for g in opt_a.param_groups:
            g["lr"] = decayed(cfg.actor_lr, cfg.lr_decay_to, it, cfg.iterations)
        for g in opt_c.param_groups:
            g["lr"] = decayed(cfg.critic_lr, cfg.lr_decay_to, it, cfg.iterations)
        if cfg.actor_gradient == "env":
            logs = env_slope_step(it)
        else:
            with torch.no_grad():
                x = obs_to_tensor(obs, device)
                if cfg.exploration == "sigma":  # along the family's curve: sigma * exp(noise)
                    noise = torch.from_numpy(rng.normal(0, cfg.exploration_noise, len(x)).astype(np.float32))
                    a = actor.sigma_to_action(actor.sigma(x) * to_device(noise.exp(), device)).cpu().numpy()
                else:
                    a = actor(x).cpu().numpy()
                    a = a + rng.normal(0, cfg.exploration_noise, a.shape).astype(np.float32)
                feats = critic.encoder.pooled(x).cpu().numpy() if frozen else None
            a = np.clip(a, -1, 1)
            sources = env.episode_sources()  # the buffer keeps these, not the images, in a checkpoint
            next_obs, rewards, _, _, info = env.step(a)
            buffer.add(obs, a, rewards, features=feats, sources=sources)
            obs = next_obs
            logs = rollout_logs(rewards, info)
        if buffer.size >= cfg.batch_size:
            for _ in range(cfg.updates_per_iteration):
                logs.update(learner.update(sample, cfg.critic_updates,
                                           train_actor=it >= cfg.critic_warmup and cfg.actor_gradient == "critic"))
        logs["charts/actor_lr"] = opt_a.param_groups[0]["lr"]
        logs["charts/critic_lr"] = opt_c.param_groups[0]["lr"]
        run.tick()
        episodes = (it + 1) * per_iteration
        for k, v in logs.items():
            writer.add_scalar(k, v, episodes)
        done = it + 1
        if done % cfg.eval_every == 0 or done == cfg.iterations:
            validate(done, episodes, panels=(done // cfg.eval_every) % panel_every == 0 or done == cfg.iterations)
            if last_eval["reward"] >= max(h["reward"] for h in history if h["env_steps"] > 0):  # the best actor too
                save_actor(actor, logdir / "actor_best.safetensors", codec=env.core.codec,
                           card=card_for(done, note=f"best validation reward so far, at iteration {done}"))
            run.restart_clock()
        stopped_by = stop_requested()  # Ctrl-C or SIGTERM: a checkpoint at this iteration, then stop
        if done % cfg.ckpt_every == 0 or done == cfg.iterations:
            checkpoint(done)
            if stopped_by is not None or done < cfg.iterations and (
                    stop_after is not None and done - start >= stop_after or run.out_of_time()):
                break  # a resume re-seeds the env itself: no reset to render here
            if done < cfg.iterations:
                obs, _ = env.reset(seed=cfg.seed + done)
            run.restart_clock()
        elif stopped_by is not None:  # between two periodic checkpoints: the env's episodes are kept as they are
            checkpoint(done, episodes=env.episode_state())
            break
        if bar is not None:
            bar.update(1)
            bar.set_postfix({"r": f"{logs['charts/reward']:.3f}",
                             **({"eval_r": f"{last_eval['reward']:.3f}"} if last_eval else {})}, refresh=False)
    if bar is not None:
        bar.close()
    run.close()
    return {"iterations": done, "steps": done * per_iteration, "wall_s": run.wall, "eval": last_eval,
            "history": history, "logdir": str(logdir), "stopped_by": stopped_by, "state": str(run.state_path)}
