"""scripts/lease_train.sh, run here as a lease would run it: the data as lossless WebP, a first lease whose
time budget ends at its first checkpoint, the parts collected and carried into a second lease that resumes,
and the result equal to the uninterrupted run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("tar") and shutil.which("split")),
                                reason="needs bash, tar and split")


def test_a_run_split_over_two_leases_equals_the_uninterrupted_run(hr_folder, tmp_path):
    from blindsr_gym.renderers import load_renderer
    from blindsr_gym.renderers.train import TrainConfig, train
    from blindsr_gym.utils import weights_digest

    dev, runs = tmp_path / "device", tmp_path / "runs"
    env = dict(os.environ, DEVICE_DIR=str(dev), RUNS_DIR=str(runs), PYTHON=sys.executable, WORK=str(tmp_path / "w"))
    script = ["bash", str(ROOT / "scripts" / "lease_train.sh")]

    def step(*args, out=None):
        p = subprocess.run(script + list(args), env={**env, **({"OUT": str(out)} if out else {})},
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        return p

    step("prep", "r", str(hr_folder))
    webps = sorted((dev / "data" / "train").glob("*.webp"))
    assert len(webps) == len(list(hr_folder.glob("*.png"))) == 5
    for w in webps:  # lossless: the pixels are the PNG's
        assert np.array_equal(cv2.imread(str(w)), cv2.imread(str(hr_folder / f"{w.stem}.png")))
    args = ["--", "train-renderer", "--data", str(dev / "data" / "train"), "--num-blocks", "1", "--patch", "8",
            "--batch", "2", "--iters", "4", "--ckpt-every", "2", "--device", "cpu", "--amp", "off", "--threads", "1",
            "--no-progress"]
    step("run", "r", "1e-9", *args, out=tmp_path / "out1")  # a budget spent at once: the first checkpoint
    log = (tmp_path / "out1" / "r.log").read_text()
    assert list((tmp_path / "out1").glob("r.tar.part-*")) and "starting r" in log
    assert '"stopped_by_time_budget": true' in log
    step("collect", "r", str(tmp_path / "out1"))
    assert torch.load(runs / "r" / "last.pt", weights_only=True)["step"] == 2
    step("prep", "r")  # the data is there already; the run is packed for the next lease
    step("run", "r", "60", *args, out=tmp_path / "out2")
    assert "resuming r" in (tmp_path / "out2" / "r.log").read_text()
    step("collect", "r", str(tmp_path / "out2"))
    assert torch.load(runs / "r" / "last.pt", weights_only=True)["step"] == 4
    assert len(list((runs / "r").rglob("events.out.tfevents.*"))) == 2  # each lease's, kept here
    import tarfile

    with tarfile.open(dev / "runs" / "r.tar") as tar:  # what the next lease carries: the state, no event files
        names = [Path(n).name for n in tar.getnames()]  # and no exported weights (both stay here)
    assert "last.pt" in names and not [n for n in names if n.startswith("events.out.tfevents")
                                       or n.endswith(".safetensors")]
    assert (runs / "r" / "amnet.safetensors").is_file()
    full = tmp_path / "full"
    train(TrainConfig(data=str(dev / "data" / "train"), out=str(full), arch_kwargs={"num_blocks": 1}, patch=8,
                      batch=2, iters=4, ckpt_every=2, threads=1, device="cpu", amp="off"), progress=False)
    assert weights_digest(load_renderer(runs / "r" / "amnet.safetensors")) == \
        weights_digest(load_renderer(full / "amnet.safetensors"))


def test_lease_script_refuses_bad_names_and_missing_parts(tmp_path):
    script = ["bash", str(ROOT / "scripts" / "lease_train.sh")]
    env = dict(os.environ, DEVICE_DIR=str(tmp_path / "d"), RUNS_DIR=str(tmp_path / "r"))
    bad = subprocess.run(script + ["run", "a/b", "1", "--", "demo"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "NAME" in bad.stderr
    missing = subprocess.run(script + ["collect", "x", str(tmp_path)], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "no x.tar.part-*" in missing.stderr


def test_a_ddpg_run_split_over_two_leases_equals_the_uninterrupted_run(hr_folder, tmp_path):
    """The paper-scale DDPG lease: prep converts the validation images too (lossless); the run's state comes back
    small (its replay buffer as episode sources, not images), and a second lease resumes it to the uninterrupted
    run's actor. LEAVE keeps named files of the run folder on the device."""
    import tarfile

    from blindsr_gym.agents import load_actor
    from blindsr_gym.utils import weights_digest

    dev, runs = tmp_path / "device", tmp_path / "runs"
    env = dict(os.environ, DEVICE_DIR=str(dev), RUNS_DIR=str(runs), PYTHON=sys.executable, WORK=str(tmp_path / "w"))
    script = ["bash", str(ROOT / "scripts" / "lease_train.sh")]

    def step(*args, **extra):
        p = subprocess.run(script + list(args), env={**env, **extra}, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]

    step("prep", "d", str(hr_folder), str(hr_folder))
    assert len(list((dev / "data" / "val").glob("*.webp"))) == 5
    train = ["train", "--env", "BlindSR-PSNR-v0", "--algo", "ddpg", "--renderer", "bicubic", "--lr-size", "16",
             "--steps", "16", "--num-envs", "4", "--batch", "4", "--val-every", "8", "--data",
             str(dev / "data" / "train"), "--val-data", str(dev / "data" / "val"), "--eval-episodes", "2",
             "--device", "cpu", "--threads", "1", "--no-progress"]
    step("run", "d", "1e-9", "--", *train, OUT=str(tmp_path / "out1"), LEAVE="actor_best.safetensors")
    parts = sorted((tmp_path / "out1").glob("d.tar.part-*"))
    with tarfile.open(fileobj=__import__("io").BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"actor.safetensors", "actor.json", "ddpg_state.pt"} <= names and "actor_best.safetensors" not in names
    assert (tmp_path / "w" / "d" / "actor_best.safetensors").is_file()  # written on the device, left there
    step("collect", "d", str(tmp_path / "out1"))
    state = torch.load(runs / "d" / "ddpg_state.pt", weights_only=True)
    assert state["iteration"] == 2 and "obs" not in state["buffer"] and "sources" in state["buffer"]
    step("prep", "d")
    step("run", "d", "60", "--", *train, OUT=str(tmp_path / "out2"))
    assert "resuming d" in (tmp_path / "out2" / "d.log").read_text()
    step("collect", "d", str(tmp_path / "out2"))
    assert torch.load(runs / "d" / "ddpg_state.pt", weights_only=True)["iteration"] == 4
    full = subprocess.run([sys.executable, "-m", "blindsr_gym", *train, "--out", str(tmp_path / "full")],
                          capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]
    assert weights_digest(load_actor(runs / "d" / "actor.safetensors")) == \
        weights_digest(load_actor(tmp_path / "full" / "actor.safetensors"))


def test_a_trainer_past_the_hard_limit_is_stopped_and_its_last_checkpoint_comes_back(hr_folder, tmp_path):
    """A checkpoint that comes late (a slow validation, a long compile) must not cost the lease: HARD_S stops
    the trainer with SIGTERM, the trainer saves its state at the step under way, and the folder is packed with
    it; it resumes."""
    dev, runs = tmp_path / "device", tmp_path / "runs"
    env = dict(os.environ, DEVICE_DIR=str(dev), RUNS_DIR=str(runs), PYTHON=sys.executable, WORK=str(tmp_path / "w"),
               OUT=str(tmp_path / "out"), HARD_S="25")
    script = ["bash", str(ROOT / "scripts" / "lease_train.sh")]
    assert subprocess.run(script + ["prep", "h", str(hr_folder)], env=env, capture_output=True).returncode == 0
    # a budget of an hour: only the hard limit can stop it
    p = subprocess.run(script + ["run", "h", "60", "--", "train-renderer", "--data", str(dev / "data" / "train"),
                                 "--num-blocks", "1", "--patch", "8", "--batch", "2", "--iters", "1000000",
                                 "--ckpt-every", "2", "--device", "cpu", "--amp", "off", "--threads", "1",
                                 "--no-progress"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 124, p.stderr[-2000:]
    log = (tmp_path / "out" / "h.log").read_text()
    assert "stopped at the hard limit (25 s)" in log
    c = subprocess.run(script + ["collect", "h", str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    step = torch.load(runs / "h" / "last.pt", weights_only=True)["step"]
    assert step >= 2 and f"stopped by SIGTERM at step {step}" in log  # saved where SIGTERM found it
    from blindsr_gym.renderers.train import TrainConfig, train
    train(TrainConfig(data=str(dev / "data" / "train"), out=str(runs / "h"), arch_kwargs={"num_blocks": 1}, patch=8,
                      batch=2, iters=step + 2, ckpt_every=2, threads=1, device="cpu", amp="off"),
          resume=True, progress=False)
    assert torch.load(runs / "h" / "last.pt", weights_only=True)["step"] == step + 2


def test_many_runs_side_by_side_each_come_back_like_a_single_run(hr_folder, tmp_path):
    """`many SPEC MINUTES`: the runs of SPEC at once in one call (one install), each returning its parts and
    log as `run` does; each resumes from what came back. Bad specs are refused before anything runs."""
    dev, runs = tmp_path / "device", tmp_path / "runs"
    env = dict(os.environ, DEVICE_DIR=str(dev), RUNS_DIR=str(runs), PYTHON=sys.executable, WORK=str(tmp_path / "w"),
               OUT=str(tmp_path / "out"))
    script = ["bash", str(ROOT / "scripts" / "lease_train.sh")]
    assert subprocess.run(script + ["prep", "a", str(hr_folder)], env=env, capture_output=True).returncode == 0
    tiny = (f"train-renderer --data {dev / 'data' / 'train'} --num-blocks 1 --patch 8 --batch 2 --iters 2 "
            "--ckpt-every 2 --device cpu --amp off --threads 1 --no-progress")
    spec = tmp_path / "spec.txt"
    spec.write_text(f"# two runs\nm_a {tiny} --seed 0\n\nm_b {tiny} --seed 1\n")
    p = subprocess.run(script + ["many", str(spec), "60"], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "2 run(s), exit 0" in p.stdout
    for name, seed in (("m_a", 0), ("m_b", 1)):
        assert "starting " + name in (tmp_path / "out" / f"{name}.log").read_text()
        c = subprocess.run(script + ["collect", name, str(tmp_path / "out")], env=env, capture_output=True, text=True)
        assert c.returncode == 0, c.stderr
        state = torch.load(runs / name / "last.pt", weights_only=True)
        assert state["step"] == 2 and state["config"]["seed"] == seed
    a, b = (torch.load(runs / n / "last.pt", weights_only=True)["model"] for n in ("m_a", "m_b"))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # two runs, not one written twice

    spec.write_text("".join(f"r{i} {tiny}\n" for i in range(5)))
    p = subprocess.run(script + ["many", str(spec), "60"], env=env, capture_output=True, text=True)
    assert p.returncode == 2 and "1 to 4 runs" in p.stderr
    spec.write_text(f"bad/name {tiny}\n")
    p = subprocess.run(script + ["many", str(spec), "60"], env=env, capture_output=True, text=True)
    assert p.returncode == 2 and "bad line" in p.stderr
