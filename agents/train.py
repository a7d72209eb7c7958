"""``blindsr-gym train``: our one-step DDPG or a Stable-Baselines3 algorithm on a registered env.

    blindsr-gym train --env BlindSR-NIQE-v0 --algo ddpg --steps 480000 --logdir runs/niqe
    blindsr-gym train --env BlindSR-PSNR-v0 --algo sb3:td3 --steps 20000 --logdir runs/td3 --resume

``--steps`` counts env steps, i.e. episodes (for DDPG: iterations x --num-envs, twice that with
``--actor-gradient env``, which plays each episode at two widths). ``--renderer``,
``--metric``, ``--dataset``, ``--lr-size`` override the env id's defaults; ``--eval-dataset`` gives
the validation episodes their own images (default: the training images with a fixed seed).
"""

from __future__ import annotations

import argparse
import json
import math

from blindsr_gym.errors import InputError

ALGO_CHOICES = ("ddpg", "sb3:td3", "sb3:sac", "sb3:ddpg", "sb3:ppo")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default="BlindSR-PSNR-v0", help="a registered id (BlindSR-NIQE-v0, BlindSR-PSNR-v0, ...)")
    p.add_argument("--algo", default="ddpg", choices=ALGO_CHOICES,
                   help="ddpg: ours (Eq. 11); sb3:td3/sac/ddpg/ppo: Stable-Baselines3")
    p.add_argument("--steps", type=int, required=True, help="env steps (episodes) to train for")
    p.add_argument("--out", "--logdir", dest="logdir", required=True,
                   help="run folder: TensorBoard logs, checkpoints, the actor (--logdir: the same)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (refused if its setting differs); sb3: its checkpoints are "
                        "pickles, so resume only run folders you trust")
    p.add_argument("--num-envs", type=int, default=None, help="episodes per batched env step (ddpg: 96, sb3: 16)")
    p.add_argument("--renderer", default=None, help="override the env's renderer (shipped name, path, 'bicubic')")
    p.add_argument("--metric", default=None, help="override the env's reward metric")
    p.add_argument("--data", "--dataset", dest="dataset", default=None,
                   help="HR training images (default: the built-in images)")
    p.add_argument("--val-data", "--eval-dataset", dest="eval_dataset", default=None,
                   help="HR images for the validation episodes")
    p.add_argument("--lr-size", type=int, default=None, help="override the env's LR crop side (default 64)")
    p.add_argument("--precision", default=None, choices=["fp32", "bf16"],
                   help="the env's rendering precision (bf16 autocast: ~1.5x faster on CPUs with AMX/AVX512-BF16)")
    p.add_argument("--eval-episodes", type=int, default=64, help="episodes of each validation (fixed seed)")
    p.add_argument("--val-every", "--eval-every", dest="eval_every", type=int, default=None,
                   help="env steps between validations (default: steps/10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the networks, exploration and episodes")
    p.add_argument("--device", default="auto", help="'cpu', 'cuda' or 'auto'")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="on a GPU, the env replays its renders from CUDA graphs (the same renders, fewer launches)")
    p.add_argument("--compile", action="store_true",
                   help="the env's AMNet renders its residual blocks through torch.compile (fused elementwise work; "
                        "the first render compiles for some seconds)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    g = p.add_argument_group("DDPG (--algo ddpg)")
    g.add_argument("--critic-loss", default="eq11", choices=["eq11", "eq10"],
                   help="eq11: the paper's sign-penalised loss; eq10: plain squared error")
    g.add_argument("--batch", "--batch-size", dest="batch_size", type=int, default=96,
                   help="transitions per update (paper: 96)")
    g.add_argument("--actor-lr", type=float, default=1e-5, help="actor learning rate (decays to 1%%)")
    g.add_argument("--critic-lr", type=float, default=1e-4, help="critic learning rate (decays to 1%%)")
    g.add_argument("--exploration-noise", type=float, default=0.1,
                   help="std of the Gaussian exploration noise (on actions, or on log sigma)")
    g.add_argument("--init-actor", default=None, help="a pre-trained actor to start from")
    g.add_argument("--updates-per-iteration", type=int, default=1, help="actor steps per batched env step")
    g.add_argument("--critic-updates", type=int, default=1, help="critic steps per actor step")
    g.add_argument("--critic-encoder", default="cnn", choices=["cnn", "actor"],
                   help="actor: the critic reads images through a frozen copy of --init-actor")
    g.add_argument("--exploration", default="action", choices=["action", "sigma"],
                   help="sigma (sigma-head actors): --exploration-noise is the std of log sigma")
    g.add_argument("--critic-warmup", type=int, default=0,
                   help="env steps at the start in which only the critic learns (rounded to iterations)")
    g.add_argument("--actor-gradient", default="critic", choices=["critic", "env"],
                   help="critic: the paper's dQ/da; env (with --exploration sigma): the env's own slope along the "
                        "width, each episode played at two widths (not the paper's)")
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="ddpg: stop at the first checkpoint after this many minutes (a GPU lease); --resume goes on")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a summary")


def summary(result: dict, algo: str, logdir) -> str:
    """A few readable lines: what ran, where its files went, the last and the best validation."""
    from pathlib import Path

    logdir = Path(logdir)
    hist = result.get("history") or []
    steps = result["steps"]  # the env steps trained (a run a signal stopped ends after its last validation)
    lines = [f"blindsr-gym train: {algo}, {steps} env steps in {result.get('wall_s', 0):.0f} s; run folder {logdir}"]
    files = [p for p in ("actor.safetensors", "actor_best.safetensors", "ddpg_state.pt", "sb3_model.zip")
             if (logdir / p).is_file()]
    if files:
        lines.append("  files: " + ", ".join(files) + "; TensorBoard: tensorboard --logdir " + str(logdir))
    last = result.get("eval") or {}
    if last:
        lines.append(f"  last validation: reward {last['reward']:+.4f}"
                     + (f", PSNR {last['psnr']:.2f} dB (true kernel {last['psnr_true_kernel']:.2f})"
                        if "psnr" in last else ""))
    if hist:
        best = max(hist, key=lambda h: h["reward"])
        lines.append(f"  best validation: reward {best['reward']:+.4f} at {best['env_steps']} env steps")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps < 1:
        raise InputError(f"--steps must be positive, got {args.steps}")
    env_kwargs = {k: v for k, v in (("renderer", args.renderer), ("metric", args.metric),
                                    ("dataset", args.dataset), ("lr_size", args.lr_size),
                                    ("precision", args.precision)) if v is not None}
    if args.cuda_graphs:
        env_kwargs["cuda_graphs"] = True
    if args.compile:
        env_kwargs["compile"] = True
    eval_kwargs = {"dataset": args.eval_dataset} if args.eval_dataset else {}
    if args.algo == "ddpg":
        from .ddpg import DDPGConfig, train_ddpg

        n = args.num_envs or 96
        per_iter = n * (2 if args.actor_gradient == "env" else 1)  # env steps of one iteration
        iters = math.ceil(args.steps / per_iter)
        every = max(1, (args.eval_every or max(args.steps // 10, per_iter)) // per_iter)
        cfg = DDPGConfig(env_id=args.env, env_kwargs=env_kwargs, eval_env_kwargs=eval_kwargs, num_envs=n,
                         iterations=iters, batch_size=args.batch_size, actor_lr=args.actor_lr,
                         critic_lr=args.critic_lr, critic_loss=args.critic_loss,
                         exploration_noise=args.exploration_noise, eval_every=every, ckpt_every=every,
                         eval_episodes=args.eval_episodes, seed=args.seed, device=args.device,
                         init_actor=args.init_actor, critic_warmup=math.ceil(args.critic_warmup / per_iter),
                         critic_encoder=args.critic_encoder, exploration=args.exploration,
                         updates_per_iteration=args.updates_per_iteration, critic_updates=args.critic_updates,
                         actor_gradient=args.actor_gradient)
        result = train_ddpg(cfg, args.logdir, resume=args.resume, progress=not args.no_progress,
                            time_budget=args.time_budget * 60 if args.time_budget else None)
    else:
        if args.time_budget:
            raise InputError("--time-budget is for --algo ddpg; SB3 runs stop at --steps (and resume from their "
                             "last checkpoint)")
        from .sb3 import train_sb3

        result = train_sb3(args.algo, args.env, args.steps, args.logdir, num_envs=args.num_envs or 16,
                           env_kwargs=env_kwargs, eval_env_kwargs=eval_kwargs, eval_episodes=args.eval_episodes,
                           eval_freq=args.eval_every, seed=args.seed, device=args.device, resume=args.resume,
                           progress=not args.no_progress)
    print(json.dumps(result, default=str) if args.json else summary(result, args.algo, args.logdir))
    from blindsr_gym.training import exit_status, report_stop

    ddpg = args.algo == "ddpg"
    report_stop(result["stopped_by"], result["iterations" if ddpg else "steps"], result["state"],
                "iteration" if ddpg else "env step")
    return exit_status(result["stopped_by"])
