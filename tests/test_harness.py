"""The training harness (blindsr_gym.training.Run), tested once for every trainer: a run split by a resume
equals the uninterrupted run, tensor for tensor; a resume refuses a changed setting and names it; a new run
never starts over an old one; the resume state is replaced whole or not at all."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from blindsr_gym.training import ResumeError, Run

TINY_ACTOR = {"channels": 8, "num_blocks": 1, "reduction": 4}
FAKE_ENV = {"renderer": "bicubic", "lr_size": 32, "device": "cpu"}


# ------------------------------------------------------------------ the trainers, each as (run, state file)
def _renderer(hr_folder, out, iters=4, stop_after=None, resume=False, time_budget=None, **kw):
    from blindsr_gym.renderers.train import TrainConfig, train

    base = dict(data=str(hr_folder), out=str(out), arch_kwargs={"num_blocks": 1}, patch=8, batch=2, iters=iters,
                ckpt_every=2, log_every=1, threads=1, device="cpu", amp="off")
    if stop_after is not None:  # the renderer trainer stops at --iters; a later resume raises it
        base["iters"] = stop_after
    return train(TrainConfig(**{**base, **kw}), resume=resume, progress=False, time_budget=time_budget)


def _dan(hr_folder, out, **kw):
    return _renderer(hr_folder, out, arch="dan", arch_kwargs={"num_blocks": 1, "loops": 2}, **kw)


def _amgan(hr_folder, out, **kw):
    init = out.parent / "amgan_init"
    if not (init / "amnet.safetensors").exists():
        _renderer(hr_folder, init, iters=2)
    return _renderer(hr_folder, out, gan=True, init=str(init / "amnet.safetensors"), w_adv=0.1, **kw)


def _pretrain(hr_folder, out, iters=4, stop_after=None, resume=False, time_budget=None, **kw):
    from blindsr_gym.agents.pretrain import PretrainConfig, pretrain

    base = dict(data=str(hr_folder), out=str(out), iters=iters, batch=2, patch=16, ckpt_every=2, device="cpu",
                loss="sigma", head="sigma", lr=1e-3, lr_decay=0.1)
    return pretrain(PretrainConfig(**{**base, **kw}), resume=resume, progress=False, stop_after=stop_after,
                    time_budget=time_budget)


def _kenet(hr_folder, out, **kw):
    return _pretrain(hr_folder, out, model="kenet", loss="att", head="fc", lr_decay=1.0, **kw)


def _ddpg(hr_folder, out, iters=4, stop_after=None, resume=False, time_budget=None, **kw):
    from blindsr_gym.agents.ddpg import DDPGConfig, train_ddpg

    base = dict(env_kwargs=FAKE_ENV, num_envs=4, iterations=iters, batch_size=4, eval_every=2, ckpt_every=2,
                eval_episodes=4, actor_lr=1e-3, critic_lr=1e-3, actor_kwargs=TINY_ACTOR)
    return train_ddpg(DDPGConfig(**{**base, **kw}), out, resume=resume, progress=False, stop_after=stop_after,
                      time_budget=time_budget)


TRAINERS = {"renderer": (_renderer, "last.pt"), "dan": (_dan, "last.pt"), "amgan": (_amgan, "last.pt"),
            "pretrain-actor": (_pretrain, "pretrain_state.pt"), "kenet": (_kenet, "pretrain_state.pt"),
            "ddpg": (_ddpg, "ddpg_state.pt")}


def _same(a, b, path="state"):
    """Every tensor, array and value of two resume states equal; training times (``wall_s``) aside."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            if k != "wall_s":
                _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), path
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), path
    else:
        assert a == b, path


@pytest.mark.parametrize("name", list(TRAINERS))
def test_a_run_split_by_a_resume_equals_the_uninterrupted_run(hr_folder, tmp_path, name):
    run, state_name = TRAINERS[name]
    run(hr_folder, tmp_path / "full")
    run(hr_folder, tmp_path / "split", stop_after=2)  # a kill after the first checkpoint
    stopped = torch.load(tmp_path / "split" / state_name, weights_only=True)
    assert stopped["iteration" if name == "ddpg" else "step"] == 2
    run(hr_folder, tmp_path / "split", resume=True)
    a = torch.load(tmp_path / "full" / state_name, weights_only=True)
    b = torch.load(tmp_path / "split" / state_name, weights_only=True)
    ca, cb = a.pop("config"), b.pop("config")
    _same(a, b)
    assert {**ca, "out": ""} == {**cb, "out": ""}  # the stored setting is the run's (the folder aside)
    # the curves too: the resumed run's TensorBoard keeps the points logged before the resume, drops none
    full, split = _curves(tmp_path / "full"), _curves(tmp_path / "split")
    assert full and split == full


def _curves(folder) -> dict:
    """``{tag: [steps]}`` of the scalars TensorBoard shows for a run folder (its event files, wherever they are)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = {p.parent for p in folder.rglob("events.out.tfevents.*")}
    acc = EventAccumulator(str(events))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.parametrize("name", ["renderer", "pretrain-actor", "ddpg"])
def test_a_time_budget_stops_at_the_next_checkpoint_and_a_resume_finishes_the_same_run(hr_folder, tmp_path, name):
    run, state_name = TRAINERS[name]
    run(hr_folder, tmp_path / "full")
    run(hr_folder, tmp_path / "lease", time_budget=1e-6)  # spent before the first step: stops at the checkpoint
    stopped = torch.load(tmp_path / "lease" / state_name, weights_only=True)
    assert stopped["iteration" if name == "ddpg" else "step"] == 2
    run(hr_folder, tmp_path / "lease", resume=True, time_budget=3600)
    a = torch.load(tmp_path / "full" / state_name, weights_only=True)
    b = torch.load(tmp_path / "lease" / state_name, weights_only=True)
    a.pop("config"), b.pop("config")
    _same(a, b)
    with pytest.raises(ValueError, match="positive number of seconds"):
        run(hr_folder, tmp_path / "bad", time_budget=0)


@pytest.fixture
def sigint_as_at_a_terminal():
    """SIGINT handled as in an interactive Python (KeyboardInterrupt), whatever this test process inherited: a
    shell's `cmd &` starts it with SIGINT ignored, and the trainers leave an ignored signal ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _child_sigint_default():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # in the child before exec: Python then makes it KeyboardInterrupt


def _signal_at_tick(monkeypatch, n, sig=signal.SIGINT):
    """Send ``sig`` to this process from the trainer's ``n``-th step (Run.tick is called once per step)."""
    calls = {"n": 0}
    tick = Run.tick

    def signalling_tick(self):
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), sig)  # Python runs the handler before the next line of the trainer
        return tick(self)

    monkeypatch.setattr(Run, "tick", signalling_tick)


@pytest.mark.parametrize("name", list(TRAINERS))
def test_a_signal_saves_the_step_under_way_and_a_resume_finishes_the_same_run(hr_folder, tmp_path, name, monkeypatch,
                                                                            capfd, sigint_as_at_a_terminal):
    """Ctrl-C in step 3 of 4 (periodic checkpoints at 2 and 4): the trainer finishes step 3, saves its state
    there, says so and returns; the resume ends where the uninterrupted run ends, tensor for tensor (for DDPG
    with the env's episodes of step 3 drawn again), and the handlers are the process's own again."""
    run, state_name = TRAINERS[name]
    key = "iteration" if name == "ddpg" else "step"
    run(hr_folder, tmp_path / "full")
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    _signal_at_tick(monkeypatch, 3)
    result = run(hr_folder, tmp_path / "split")
    monkeypatch.undo()
    assert result["stopped_by"] == "SIGINT" and "SIGINT: stopping after this step" in capfd.readouterr().err
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    stopped = torch.load(tmp_path / "split" / state_name, weights_only=True)
    assert stopped[key] == 3
    assert ("episodes" in stopped) == (name == "ddpg")  # between two resets: the env's episodes are kept
    run(hr_folder, tmp_path / "split", resume=True)
    a = torch.load(tmp_path / "full" / state_name, weights_only=True)
    b = torch.load(tmp_path / "split" / state_name, weights_only=True)
    a.pop("config"), b.pop("config")
    _same(a, b)


def test_stop_on_signals_records_the_first_signal_and_lets_the_second_act(sigint_as_at_a_terminal):
    from blindsr_gym.training import stop_on_signals, stop_requested

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert stop_requested() is None
    with stop_on_signals():
        assert signal.getsignal(signal.SIGINT) is not before[0] and signal.getsignal(signal.SIGTERM) is not before[1]
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop_requested() == "SIGTERM"
        # both handlers are the process's own again: a second signal of either kind acts as without us
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert stop_requested() is None
    with stop_on_signals():
        os.kill(os.getpid(), signal.SIGINT)
        assert stop_requested() == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C twice: Python's own KeyboardInterrupt
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with stop_on_signals():  # an ignored signal stays ignored, a handled one is caught
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is not before[1]
    result = {}
    thread = threading.Thread(target=lambda: result.update(ok=_in_thread()))
    thread.start()
    thread.join()
    assert result["ok"]


def _in_thread():
    from blindsr_gym.training import stop_on_signals, stop_requested

    with stop_on_signals():  # handlers cannot be set outside the main thread: nothing is caught, nothing fails
        return stop_requested() is None


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_command_stopped_by_a_signal_saves_says_so_and_exits_128_plus_its_number(hr_folder, tmp_path, sig, status):
    """The real thing: `blindsr-gym train-renderer` in its own process, signalled after its first checkpoint
    (as `timeout`, a scheduler or Ctrl-C would); then `--resume` finishes the run."""
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "blindsr_gym.cli", "train-renderer", "--data", str(hr_folder), "--out", str(out),
           "--num-blocks", "1", "--patch", "8", "--batch", "2", "--iters", "100000", "--ckpt-every", "5",
           "--device", "cpu", "--amp", "off", "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_child_sigint_default)
    deadline = time.monotonic() + 120
    while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (out / "last.pt").exists(), proc.communicate()[1]
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    name = signal.Signals(sig).name
    assert proc.returncode == status, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    state = torch.load(out / "last.pt", weights_only=True)
    assert summary["stopped_by"] == name and state["step"] == summary["step"] < 100000
    assert f"stopped by {name} at step {state['step']}" in stderr and "--resume" in stderr
    done = subprocess.run([*cmd[:cmd.index("100000")], str(state["step"] + 2), *cmd[cmd.index("100000") + 1:],
                           "--resume"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert torch.load(out / "last.pt", weights_only=True)["step"] == state["step"] + 2


@pytest.mark.parametrize("name", ["renderer", "pretrain-actor", "ddpg"])
def test_a_new_run_never_starts_over_an_old_one_and_a_resume_needs_one(hr_folder, tmp_path, name):
    run, state_name = TRAINERS[name]
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(hr_folder, tmp_path / "none", resume=True)
    run(hr_folder, tmp_path / "r", iters=2)
    before = (tmp_path / "r" / state_name).read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        run(hr_folder, tmp_path / "r", iters=2)
    assert (tmp_path / "r" / state_name).read_bytes() == before


@pytest.mark.parametrize("name, change, named", [
    ("renderer", {"noise": 5.0}, "noise: 0.0 -> 5.0"),
    ("renderer", {"arch_kwargs": {"num_blocks": 2}}, "arch_kwargs.num_blocks: 1 -> 2"),
    ("pretrain-actor", {"batch": 4, "lr": 1e-2}, "batch: 2 -> 4; lr: 0.001 -> 0.01"),
    ("ddpg", {"env_kwargs": {**FAKE_ENV, "metric": "niqe"}}, "env_kwargs.metric"),
    ("ddpg", {"env_kwargs": {**FAKE_ENV, "lr_size": 48}}, "env_kwargs.lr_size: 32 -> 48"),
    ("ddpg", {"num_envs": 8}, "num_envs: 4 -> 8"),
    ("ddpg", {"critic_loss": "eq10"}, "critic_loss"),
])
def test_a_resume_refuses_a_changed_setting_and_names_it(hr_folder, tmp_path, name, change, named):
    run, _ = TRAINERS[name]
    run(hr_folder, tmp_path / "r", iters=2)
    with pytest.raises(ResumeError, match=named.replace(".", r"\.")):
        run(hr_folder, tmp_path / "r", iters=4, resume=True, **change)


def test_a_resume_may_run_longer_and_on_another_device_spelling(hr_folder, tmp_path):
    _ddpg(hr_folder, tmp_path, iters=2)
    out = _ddpg(hr_folder, tmp_path, iters=4, resume=True, env_kwargs={**FAKE_ENV, "device": "cpu:0"})
    assert out["iterations"] == 4


def test_a_warm_started_run_resumes_without_its_init_file(hr_folder, tmp_path):
    """A lease carries the resume state, not the init's weights: the state holds both what they gave."""
    base = tmp_path / "base"
    _renderer(hr_folder, base, iters=2)
    init = tmp_path / "init.safetensors"
    shutil.copy(base / "amnet.safetensors", init)
    shutil.copy(base / "amnet.json", init.with_suffix(".json"))
    _renderer(hr_folder, tmp_path / "full", init=str(init))
    _renderer(hr_folder, tmp_path / "split", init=str(init), stop_after=2)
    init.unlink()
    _renderer(hr_folder, tmp_path / "split", init=str(init), resume=True)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    card = json.loads((tmp_path / "split" / "amnet.json").read_text())["training"]
    assert card["init_training"]["training"]["iterations"] == 2


def test_sb3_resume_refuses_another_metric(tmp_path):
    from blindsr_gym.agents.sb3 import train_sb3

    kw = dict(num_envs=4, eval_episodes=4, device="cpu", progress=False, learning_starts=4, buffer_size=64,
              batch_size=4)
    train_sb3("sb3:td3", "BlindSR-PSNR-v0", 8, tmp_path, env_kwargs=FAKE_ENV, **kw)
    assert json.loads((tmp_path / "sb3_config.json").read_text())["env_kwargs"]["lr_size"] == "32"
    with pytest.raises(ResumeError, match="env_kwargs.metric"):
        train_sb3("sb3:td3", "BlindSR-PSNR-v0", 16, tmp_path, env_kwargs={**FAKE_ENV, "metric": "ssim"}, resume=True,
                  **kw)
    with pytest.raises(FileExistsError, match="--resume"):
        train_sb3("sb3:td3", "BlindSR-PSNR-v0", 8, tmp_path, env_kwargs=FAKE_ENV, **kw)


def test_sb3_resume_restores_the_saved_model_and_continues_the_count(tmp_path):
    """SB3 keeps no RNG state in its checkpoint, so a split run cannot equal an uninterrupted one; what can be
    checked is that the resumed model is the saved one and that it counts on from there."""
    import stable_baselines3 as sb3

    from blindsr_gym.agents.sb3 import train_sb3

    env = FAKE_ENV
    kw = dict(num_envs=4, eval_episodes=4, device="cpu", progress=False, learning_starts=4, buffer_size=64,
              batch_size=4, env_kwargs=env)
    train_sb3("sb3:td3", "BlindSR-PSNR-v0", 8, tmp_path, **kw)
    saved = sb3.TD3.load(tmp_path / "sb3_model.zip", device="cpu")
    size = sb3.TD3.load(tmp_path / "sb3_model.zip", device="cpu")
    size.load_replay_buffer(tmp_path / "sb3_replay_buffer.pkl")
    assert saved.num_timesteps == 8 and size.replay_buffer.size() == 8 // 4
    out = train_sb3("sb3:td3", "BlindSR-PSNR-v0", 8, tmp_path, resume=True, **kw)  # nothing left: the same model
    again = sb3.TD3.load(tmp_path / "sb3_model.zip", device="cpu")
    assert out["steps"] == 8
    assert all(torch.equal(p, q) for p, q in zip(saved.policy.state_dict().values(),
                                                 again.policy.state_dict().values(), strict=True))
    out = train_sb3("sb3:td3", "BlindSR-PSNR-v0", 16, tmp_path, resume=True, **kw)
    assert out["steps"] == 16
    size.load_replay_buffer(tmp_path / "sb3_replay_buffer.pkl")
    assert size.replay_buffer.size() == 16 // 4  # the restored transitions and the new ones
    moved = sb3.TD3.load(tmp_path / "sb3_model.zip", device="cpu")
    assert not all(torch.equal(p, q) for p, q in zip(saved.policy.state_dict().values(),
                                                     moved.policy.state_dict().values(), strict=True))
    assert json.loads((tmp_path / "sb3_config.json").read_text())["algo"] == "td3"


def test_a_signal_ends_an_sb3_run_after_the_env_step_under_way_with_its_checkpoint(tmp_path, monkeypatch):
    import stable_baselines3 as sb3

    from blindsr_gym.agents.sb3 import SB3VecEnv, train_sb3

    kw = dict(num_envs=4, eval_episodes=4, device="cpu", progress=False, learning_starts=4, buffer_size=64,
              batch_size=4, env_kwargs=FAKE_ENV, ckpt_freq=1000)  # no periodic checkpoint within the run
    calls = {"n": 0}
    step_wait = SB3VecEnv.step_wait

    def signalling(self):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return step_wait(self)

    monkeypatch.setattr(SB3VecEnv, "step_wait", signalling)
    out = train_sb3("sb3:td3", "BlindSR-PSNR-v0", 400, tmp_path, **kw)
    monkeypatch.undo()
    assert out["stopped_by"] == "SIGTERM" and out["steps"] == 3 * 4  # the third env step, then stop
    assert sb3.TD3.load(tmp_path / "sb3_model.zip", device="cpu").num_timesteps == 12
    assert train_sb3("sb3:td3", "BlindSR-PSNR-v0", 16, tmp_path, resume=True, **kw)["steps"] == 16


# ------------------------------------------------------------------ Run itself
def test_run_stores_its_config_and_training_time_and_fills_old_states_defaults(tmp_path):
    run = Run(tmp_path, "state.pt", {"lr": 0.1, "iters": 4})
    run.restart_clock()
    run.wall += 5.0  # as if five seconds had been trained
    run.tick()
    run.save_state({"step": 2})
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["step"] == 2 and state["config"] == {"lr": 0.1, "iters": 4} and state["wall_s"] >= 5.0
    # a state written before "new_key" existed resumes when the new key holds its default
    again = Run(tmp_path, "state.pt", {"lr": 0.1, "iters": 8, "new_key": 1}, allowed=("iters",), resume=True,
                defaults={"new_key": 1})
    assert again.state["step"] == 2 and again.wall == state["wall_s"]
    with pytest.raises(ResumeError, match="new_key: 1 -> 2"):
        Run(tmp_path, "state.pt", {"lr": 0.1, "iters": 8, "new_key": 2}, allowed=("iters",), resume=True,
            defaults={"new_key": 1})


def test_run_clock_leaves_out_what_ran_between_ticks(tmp_path, monkeypatch):
    import time

    now = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    run = Run(tmp_path, "s.pt", {})
    run.restart_clock()
    now[0] += 2.0
    run.tick()  # trained 2 s
    now[0] += 30.0
    run.restart_clock()  # an evaluation of 30 s is not training time
    now[0] += 1.0
    assert run.tick() == pytest.approx(3.0)


def test_a_failed_state_write_leaves_the_previous_state(tmp_path, monkeypatch):
    run = Run(tmp_path, "state.pt", {"a": 1})
    run.save_state({"step": 1})

    def broken(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        run.save_state({"step": 2})
    monkeypatch.undo()
    assert torch.load(tmp_path / "state.pt", weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # no temporary file left behind


def test_a_process_that_does_not_write_writes_nothing(tmp_path):
    run = Run(tmp_path / "r", "state.pt", {"a": 1}, writes=False)
    run.save_state({"step": 1})
    assert run.writer() is None and run.progress(True, 10, 0, "x") is None
    assert not (tmp_path / "r").exists()


def test_the_time_budget_flag(hr_folder, tmp_path, capsys):
    from blindsr_gym.cli import main

    rc = main(["train-renderer", "--data", str(hr_folder), "--out", str(tmp_path / "r"), "--num-blocks", "1",
               "--patch", "8", "--batch", "2", "--iters", "6", "--ckpt-every", "2", "--device", "cpu", "--amp", "off",
               "--threads", "1", "--no-progress", "--time-budget", "1e-9"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and summary["step"] == 2 and summary["stopped_by_time_budget"]
    rc = main(["train", "--algo", "sb3:td3", "--steps", "8", "--out", str(tmp_path / "s"), "--time-budget", "1"])
    assert rc == 2 and "--time-budget is for --algo ddpg" in capsys.readouterr().err


def test_a_ddpg_resume_may_change_how_renders_launch_but_not_what_renders():
    """--cuda-graphs and --compile change how the renders run, not what they render: a run may resume with
    or without them; another renderer is still refused."""
    from blindsr_gym.agents.ddpg import RESUME_ALLOWED
    from blindsr_gym.training import config_differences

    saved = {"env_kwargs": {"renderer": "amnet_x4", "precision": "bf16"}}
    graphs = {"env_kwargs": {"renderer": "amnet_x4", "precision": "bf16", "cuda_graphs": True}}
    assert config_differences(saved, graphs, RESUME_ALLOWED) == []
    other = {"env_kwargs": {"renderer": "amgan_x4", "precision": "bf16", "cuda_graphs": True}}
    assert config_differences(saved, other, RESUME_ALLOWED) == ["env_kwargs.renderer: 'amnet_x4' -> 'amgan_x4'"]
    compiled = {"env_kwargs": {"renderer": "amnet_x4", "precision": "bf16", "compile": True}}
    assert config_differences(saved, compiled, RESUME_ALLOWED) == []


def test_the_trainers_adam_is_fused_on_cuda_only_and_its_state_moves_between_the_two():
    """A lease trains with the fused update; the CPU resumes its state with the default one (and back)."""
    from blindsr_gym.training import adam

    def fresh():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))

    assert adam(fresh().parameters(), 1e-2, "cuda").defaults["fused"] is True
    assert not adam(fresh().parameters(), 1e-2, "cpu").defaults["fused"]
    x = torch.randn(32, 6)

    def step(model, opt):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()

    ref = fresh()
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2, fused=True)
    for _ in range(6):
        step(ref, ref_opt)
    for first, second in ((True, None), (None, True)):  # fused -> default, default -> fused
        model = fresh()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=first)
        for _ in range(3):
            step(model, opt)
        moved = fresh()
        moved.load_state_dict(model.state_dict())
        opt2 = torch.optim.Adam(moved.parameters(), lr=1e-2, fused=second)
        opt2.load_state_dict(opt.state_dict())
        for _ in range(3):
            step(moved, opt2)
        for a, b in zip(ref.parameters(), moved.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_a_renderer_run_may_resume_with_its_blocks_compiled(hr_folder, tmp_path):
    """--compile changes how the training step runs (torch.compile over AMNet's blocks), not what it learns:
    the resume is allowed, and the weights equal the eager run's to float rounding (float32)."""
    _renderer(hr_folder, tmp_path / "eager")
    _renderer(hr_folder, tmp_path / "split", stop_after=2)
    torch._dynamo.utils.counters.clear()
    _renderer(hr_folder, tmp_path / "split", resume=True, compile=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    a = torch.load(tmp_path / "eager" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert b["step"] == 4 and b["config"]["compile"] is True
    from blindsr_gym.errors import InputError
    from blindsr_gym.renderers.train import TrainConfig

    with pytest.raises(InputError, match="DAN has none"):
        TrainConfig(data="x", out="y", arch="dan", compile=True)
    for k in a["model"]:
        torch.testing.assert_close(b["model"][k], a["model"][k], rtol=0, atol=1e-5, msg=k)


def test_a_run_starts_from_another_runs_resume_state(hr_folder, tmp_path):
    """--init last.pt: the weights of where another run stopped (a new batch or crop size needs a new run), and
    a card that records that run; a state of another architecture, or of a GAN run, is refused by name."""
    from blindsr_gym.errors import InputError

    _renderer(hr_folder, tmp_path / "first", iters=2)
    state = tmp_path / "first" / "last.pt"
    _renderer(hr_folder, tmp_path / "second", iters=1, init=str(state), batch=4)
    first = torch.load(state, weights_only=True)["model"]
    # one step of a fresh Adam moves each weight by about the lr at most (2e-4): the start was the first run's
    second = torch.load(tmp_path / "second" / "last.pt", weights_only=True)["model"]
    for k in first:
        torch.testing.assert_close(second[k], first[k], rtol=0, atol=5e-4, msg=k)
    card = json.loads((tmp_path / "second" / "amnet.json").read_text())["training"]
    assert card["init_training"]["training"]["iterations"] == 2
    assert card["init_training"]["training"]["resume_state"] == str(state)
    with pytest.raises(InputError, match="'amnet' run; this run trains 'dan'"):
        _dan(hr_folder, tmp_path / "third", iters=1, init=str(state))


def test_sb3_replay_buffer_pickles_sources_and_a_resume_draws_the_images_again(tmp_path):
    """An SB3 off-policy buffer on our env pickles its episodes' sources instead of its images (twice 3 KB per
    transition at 32x32: observation and the equal terminal observation); unpickled, it holds no images until
    ``redraw``, which gives back the saved arrays byte for byte, and refuses an env on other images."""
    import cv2
    import stable_baselines3 as sb3

    from blindsr_gym.agents.rollouts import make_vec_env
    from blindsr_gym.agents.sb3 import SB3VecEnv, SourcedReplayBuffer, make_model
    from blindsr_gym.errors import InputError

    venv = make_vec_env("BlindSR-PSNR-v0", 4, **FAKE_ENV)
    env = SB3VecEnv(venv)
    env.seed(3)
    model = make_model("td3", env, device="cpu", buffer_size=64, learning_starts=4, batch_size=4)
    model.learn(24)  # 6 batched steps of 4 episodes
    rb = model.replay_buffer
    assert isinstance(rb, SourcedReplayBuffer) and rb.size() == 6
    saved_obs, saved_next = rb.observations[:6].copy(), rb.next_observations[:6].copy()
    assert saved_obs.any() and np.array_equal(saved_obs, saved_next)
    assert len({saved_obs[i, j].tobytes() for i in range(6) for j in range(4)}) == 24  # 24 distinct episodes
    model.save_replay_buffer(tmp_path / "rb.pkl")
    assert (tmp_path / "rb.pkl").stat().st_size < saved_obs.nbytes / 2  # the images alone would be 4x that

    model.save(tmp_path / "m.zip")
    fresh = sb3.TD3.load(tmp_path / "m.zip", env=env, device="cpu")
    fresh.load_replay_buffer(tmp_path / "rb.pkl")
    assert fresh.replay_buffer.images_missing and fresh.replay_buffer.observations is None
    with pytest.raises(InputError, match="redraw"):
        fresh.replay_buffer.sample(4)
    assert fresh.replay_buffer.redraw(venv.observations) == {"regenerated": 24, "inexact": 0}
    assert np.array_equal(fresh.replay_buffer.observations[:6], saved_obs)
    assert np.array_equal(fresh.replay_buffer.next_observations[:6], saved_next)
    assert fresh.replay_buffer.observations.shape == rb.observations.shape
    fresh.learn(8, reset_num_timesteps=False)  # and it trains on from there
    assert fresh.replay_buffer.size() == 8

    other = tmp_path / "other"
    other.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(other / f"{i}.png"), rng.integers(0, 256, (160, 160, 3), dtype=np.uint8))
    elsewhere = make_vec_env("BlindSR-PSNR-v0", 4, **FAKE_ENV, dataset=str(other))
    again = sb3.TD3.load(tmp_path / "m.zip", env=env, device="cpu")
    again.load_replay_buffer(tmp_path / "rb.pkl")
    with pytest.raises(InputError, match="not the images saved"):
        again.replay_buffer.redraw(elsewhere.observations)


def test_sb3_replay_buffer_without_sources_pickles_its_images():
    """Transitions of an env that gives no sources (any other VecEnv) keep SB3's behaviour: images in the pickle."""
    import pickle

    import gymnasium as gym

    from blindsr_gym.agents.sb3 import SourcedReplayBuffer

    space = gym.spaces.Box(0, 255, (3, 8, 8), np.uint8)
    rb = SourcedReplayBuffer(8, space, gym.spaces.Box(-1, 1, (2,), np.float32), device="cpu", n_envs=2)
    obs = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    rb.add(obs, obs, np.zeros((2, 2), np.float32), np.zeros(2), np.ones(2), [{}, {}])
    back = pickle.loads(pickle.dumps(rb))
    assert not back.images_missing and np.array_equal(back.observations[0], obs)
    assert back.redraw(None) == {"regenerated": 0, "inexact": 0}
