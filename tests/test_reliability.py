"""Nothing the user owns is overwritten or truncated, corrupt weights are caught, resume refuses a changed
setup, no NaN is hidden, and expected failures are one line while bugs keep their tracebacks (issue 23).
Each reproduction of the issue is a test here; so is the guard of the class it belongs to."""

import ast
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from blindsr_gym.cli import main
from blindsr_gym.fileio import atomic_path, write_image, write_text

ROOT = Path(__file__).resolve().parents[1]


def _png(path, side, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


# ------------------------------------------------------------------ 1. upscale never overwrites an input
def test_upscale_overwrite_never_touches_an_input(tmp_path, capsys):
    c = tmp_path / "c"
    c.mkdir()
    _png(c / "b.png", 32)
    _png(c / "b_x4.png", 40, seed=1)  # an input whose name is another input's output
    before = (c / "b_x4.png").read_bytes()
    rc = main(["upscale", str(c), "--out", str(c), "--method", "bicubic", "--overwrite", "--no-progress"])
    assert rc == 2 and "would overwrite the input" in capsys.readouterr().err
    assert (c / "b_x4.png").read_bytes() == before
    assert sorted(p.name for p in c.iterdir()) == ["b.png", "b_x4.png"]  # nothing was written at all


def test_upscale_skip_existing_and_a_corrupt_file_among_good_ones(tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        _png(d / f"a{i}.png", 16, seed=i)
    (d / "a1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)  # corrupt, between two good ones
    out = tmp_path / "out"
    rc = main(["upscale", str(d), "--out", str(out), "--method", "bicubic", "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1 and "a1.png: FAILED" in cap.err and "2 image(s) upscaled" in cap.out and "1 FAILED" in cap.out
    assert sorted(p.name for p in out.iterdir()) == ["a0_x4.png", "a2_x4.png"]
    kept = (out / "a0_x4.png").stat().st_mtime_ns
    _png(d / "a1.png", 16, seed=5)  # repaired: a rerun finishes the folder without --overwrite
    assert main(["upscale", str(d), "--out", str(out), "--method", "bicubic", "--skip-existing", "--no-progress"]) == 0
    assert "2 skipped" in capsys.readouterr().out
    assert (out / "a0_x4.png").stat().st_mtime_ns == kept and (out / "a1_x4.png").is_file()
    assert main(["upscale", str(d), "--out", str(out), "--method", "bicubic", "--skip-existing", "--overwrite",
                 "--no-progress"]) == 2


def test_unwritable_out_is_one_line_before_any_work(tmp_path, capsys):
    src = _png(tmp_path / "x.png", 16)
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert main(["upscale", str(src), "--out", str(blocker / "sr"), "--method", "bicubic", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    for flag in ("--json", "--markdown", "--figures"):  # refused before the evaluation, not after it
        assert main(["evaluate", "--data", "builtin", "--max-images", "1", "--kernels", "sigma:2.0", "--methods",
                     "bicubic", flag, str(blocker / "sub" / "r"), "--no-progress"]) == 2
        out = capsys.readouterr()
        assert "not writable" in out.err and "| bicubic" not in out.out


# ------------------------------------------------------------------ 2. a file is modified only once recognised
def test_evaluate_resume_leaves_a_foreign_file_untouched(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my only line")
    for text in ("my only line", '{"header": 1}\n', '{"header": {"scale": 4, "metrics": ["psnr"], "kernels": [], '
                 '"methods": {}}}\nnot json\n'):
        notes.write_text(text)
        rc = main(["evaluate", "--data", "builtin", "--max-images", "1", "--kernels", "sigma:2.0", "--methods",
                   "bicubic", "--log", str(notes), "--resume", "--no-progress"])
        assert rc == 2 and "not a per-image evaluation log" in capsys.readouterr().err
        assert notes.read_text() == text


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "card.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new cont")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    write_text(target, "new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]
    img = tmp_path / "p.png"
    write_image(img, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        write_image(img, np.zeros((4, 4, 3), np.float32))  # refused before the file is touched
    assert np.asarray(Image.open(img)).shape == (4, 4, 3) and sorted(tmp_path.iterdir()) == [target, img]


def _in_place_writes(source: str, name: str) -> list[str]:
    """Calls in ``source`` that write a file other than the temporary path atomic_path yields."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f, text = node.func, ast.unparse(node)
        args = [ast.unparse(a) for a in node.args]
        if isinstance(f, ast.Attribute) and f.attr in ("write_text", "write_bytes"):
            target = ast.unparse(f.value)  # Path(...).write_text(...); fileio.write_text(...) is a Name call
        elif isinstance(f, ast.Attribute) and f.attr == "open" or isinstance(f, ast.Name) and f.id == "open":
            if not any(m in text for m in ("'w", '"w', "'a", '"a', "'x", '"x')):
                continue
            target = text
        elif ast.unparse(f) in ("cv2.imwrite", "imwrite"):
            target = text
        elif ast.unparse(f) in ("torch.save", "save_file"):
            target = args[1] if len(args) > 1 else text
        elif isinstance(f, ast.Attribute) and f.attr in ("save", "save_replay_buffer") and args:
            target = args[0]  # an SB3 model's save(path)
        else:
            continue
        if "tmp" not in target:
            found.append(f"{name}:{node.lineno} {text[:90]}")
    return found


def test_no_module_writes_a_file_in_place():
    """The class guard: user-visible files are written only through blindsr_gym.fileio (atomic). A direct
    ``Path.write_text``, ``cv2.imwrite``, ``torch.save``, ``save_file``, a model's ``save`` or ``open(..., "w")``
    anywhere else in the package is a finding, unless it writes the temporary path that atomic_path yields."""
    findings = []
    for path in [*ROOT.glob("blindsr_gym/**/*.py"), *ROOT.glob("agents/*.py"), *ROOT.glob("renderers/*.py")]:
        if path.name != "fileio.py":
            findings += _in_place_writes(path.read_text(), path.name)
    # the per-image evaluation log is appended to (an incomplete last line is dropped on --resume)
    findings = [f for f in findings if "self.path.open('a')" not in f]
    assert not findings, findings
    # the guard itself finds what it must
    bad = "from pathlib import Path\nPath('c.json').write_text('x')\ntorch.save(s, path)\nopen(p, 'w')\n"
    assert len(_in_place_writes(bad, "bad.py")) == 3
    assert not _in_place_writes("with atomic_path(p) as tmp:\n    torch.save(s, tmp)\n", "ok.py")


# ------------------------------------------------------------------ 3. corrupt checkpoints are caught
def _bitflip(src: Path, dst: Path, fill: int) -> Path:
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 1000] = bytes([fill]) * 1000
    dst.write_bytes(bytes(data))
    return dst


def test_corrupt_weights_are_refused_with_their_path(tmp_path, capsys):
    from blindsr_gym.envs import BlindSREnv
    from blindsr_gym.renderers import RendererCheckpointError, _resolve, load_renderer

    shipped = _resolve("amnet_x4")
    nan = _bitflip(shipped, tmp_path / "bitflip.safetensors", 0xFF)  # 0xFFFFFFFF is a float32 NaN
    src = _png(tmp_path / "x.png", 24)
    rc = main(["upscale", str(src), "--out", str(tmp_path / "o"), "--sigma", "2", "--renderer", str(nan),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "bitflip.safetensors" in err and "NaN or inf" in err
    assert not (tmp_path / "o").exists()  # no black PNG
    with pytest.raises(RendererCheckpointError, match="bitflip.safetensors.*NaN or inf"):
        BlindSREnv(renderer=str(nan), device="cpu")
    # finite garbage in a file whose card records its digest: the digest catches it
    copy = tmp_path / "amnet_copy.safetensors"
    _bitflip(shipped, copy, 0x00)
    shutil.copy(shipped.with_suffix(".json"), copy.with_suffix(".json"))
    with pytest.raises(RendererCheckpointError, match="SHA-256 differs"):
        load_renderer(copy)


def test_every_shipped_card_records_its_weights_digest():
    from blindsr_gym.agents import SHIPPED_ACTORS
    from blindsr_gym.agents import _resolve as actor_path
    from blindsr_gym.agents.kenet import SHIPPED_KENETS, resolve_kenet
    from blindsr_gym.renderers import SHIPPED, _resolve
    from blindsr_gym.utils import file_sha256

    paths = [_resolve(n) for n in SHIPPED] + [actor_path(n) for n in SHIPPED_ACTORS]
    paths += [resolve_kenet(n) for n in SHIPPED_KENETS]
    for p in paths:
        assert json.loads(p.with_suffix(".json").read_text())["sha256"] == file_sha256(p), p


def test_saved_checkpoints_carry_their_digest(tmp_path):
    from blindsr_gym.renderers import build_renderer, load_renderer, save_renderer
    from blindsr_gym.utils import file_sha256

    path = save_renderer(build_renderer("amnet", num_blocks=1), tmp_path / "r.safetensors", card={"note": "x"})
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == file_sha256(path) and card["note"] == "x"
    load_renderer(path)


class _NaNRenderer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from blindsr_gym.renderers import build_renderer

        fake = build_renderer("bicubic")
        self.codec, self.scale = fake.codec, fake.scale

    def forward(self, lr, code):
        return torch.full((lr.shape[0], 3, lr.shape[-2] * 4, lr.shape[-1] * 4), float("nan"))


def test_a_non_finite_sr_image_is_an_error_not_an_image():
    from blindsr_gym.data import builtin
    from blindsr_gym.envs import BlindSREnv
    from blindsr_gym.evaluate import Method, evaluate, parse_kernels
    from blindsr_gym.utils import NonFiniteOutputError

    env = BlindSREnv(renderer=_NaNRenderer(), lr_size=16, device="cpu")
    with pytest.raises(NonFiniteOutputError, match="not finite"):
        env.reset(seed=0)
    nan = Method("nan", lambda lr, k: torch.full((1, 3, lr.shape[-2] * 4, lr.shape[-1] * 4), float("nan")))
    with pytest.raises(NonFiniteOutputError, match="method nan"):
        evaluate({"b": builtin(mod=4)}, parse_kernels("sigma:2.0"), [nan], ["psnr"], max_images=1, progress=False)


def test_a_vector_step_with_a_non_finite_render_raises_and_leaves_the_generators_alone():
    """The vector env draws the next episodes while the device renders; when the render turns out non-finite
    the step raises, and every sub-env's generator is where it was before the step."""
    from blindsr_gym.envs import BlindSRVectorEnv
    from blindsr_gym.utils import NonFiniteOutputError

    env = BlindSRVectorEnv(num_envs=3, renderer="bicubic", lr_size=16, device="cpu")
    env.reset(seed=0)
    before = [r.bit_generator.state for r in env._rngs]
    env.core.renderer = _NaNRenderer()
    with pytest.raises(NonFiniteOutputError, match="not finite"):
        env.step(np.zeros((3, 15), np.float32))
    assert [r.bit_generator.state for r in env._rngs] == before


@pytest.mark.parametrize("metric", ["psnr", "niqe"])
def test_a_step_whose_action_render_alone_is_not_finite_changes_nothing(metric):
    """The step queues the action's render, its scores and the next episodes before it waits for the device
    once. When only the action's render is broken, the step must still raise before any reward, and leave the
    env as it was: stepping again with a good renderer gives what an env that never failed gives."""
    from blindsr_gym.envs import BlindSRVectorEnv
    from blindsr_gym.utils import NonFiniteOutputError

    class NaNOnce(torch.nn.Module):
        def __init__(self, good):
            super().__init__()
            self.good, self.codec, self.scale, self.calls = good, good.codec, good.scale, 0

        def forward(self, lr, code):
            self.calls += 1
            sr = self.good(lr, code)
            return sr * float("nan") if self.calls == 1 else sr

    kw = dict(num_envs=3, renderer="bicubic", metric=metric, lr_size=48 if metric == "niqe" else 16, device="cpu")
    env, twin = BlindSRVectorEnv(**kw), BlindSRVectorEnv(**kw)
    env.reset(seed=0)
    twin.reset(seed=0)
    good = env.core.renderer
    env.core.renderer = NaNOnce(good)
    a = np.random.default_rng(0).uniform(-1, 1, (3, 15)).astype(np.float32)
    with pytest.raises(NonFiniteOutputError, match="not finite"):
        env.step(a)
    assert env.core.renderer.calls == 2  # the action's render, then the next episodes' were queued
    env.core.renderer = good
    out, ref = env.step(a), twin.step(a)
    np.testing.assert_array_equal(out[0], ref[0])  # the same next episodes
    np.testing.assert_array_equal(out[1], ref[1])  # the same rewards, for the same episodes


# ------------------------------------------------------------------ 4. resume (the rest: tests/test_harness.py)
def test_a_truncated_resume_state_is_one_line(hr_folder, tmp_path, capsys):
    from blindsr_gym.agents.pretrain import PretrainConfig, pretrain

    out = tmp_path / "p"
    pretrain(PretrainConfig(data=str(hr_folder), out=str(out), iters=2, batch=2, patch=16, ckpt_every=2,
                            device="cpu"), progress=False)
    state = out / "pretrain_state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    rc = main(["pretrain-actor", "--data", str(hr_folder), "--out", str(out), "--iters", "3", "--batch", "2",
               "--patch", "16", "--device", "cpu", "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "pretrain_state.pt is damaged" in err and "Traceback" not in err


# ------------------------------------------------------------------ 5. no NaN is hidden in a mean
def test_evaluate_states_what_each_mean_is_over(tmp_path, capsys):
    from blindsr_gym.data import builtin

    d = tmp_path / "d"
    d.mkdir()
    Image.fromarray(builtin(mod=4)[1][:200, :200]).save(d / "cat.png")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(d / "flat.png")  # NIQE is undefined (NaN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(["evaluate", "--data", str(d), "--kernels", "sigma:2.0", "--methods", "bicubic", "--metrics",
                   "niqe", "--json", str(tmp_path / "r.json"), "--no-progress"])
    assert rc == 0
    assert any("flat.png" in str(w.message) and "1 of 2" in str(w.message) for w in caught), [str(w.message)
                                                                                          for w in caught]
    rec = json.loads((tmp_path / "r.json").read_text())
    assert rec["records"][0]["images"] == 2 and rec["records"][0]["n"] == {"niqe": 1}
    assert rec["summary"][0]["n"] == {"niqe": 1} and np.isfinite(rec["records"][0]["niqe"])
    assert "(1/2)" in capsys.readouterr().out


# ------------------------------------------------------------------ expected failures vs bugs
def test_expected_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch):
    import blindsr_gym.upscale as up

    def bug(*a, **k):
        raise ValueError("an internal bug")

    monkeypatch.setattr(up, "upscale_files", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["upscale", "x.png", "--out", "o"])


# ------------------------------------------------------------------ shipping never replaces shipped weights
@pytest.mark.parametrize("script, weights, name, extra", [
    ("ship_actor.sh", "agents/weights/actor_psnr_x4.safetensors", "actor_niqe_x4", ["amgan-rl"]),
    ("ship_renderer.sh", "renderers/weights/amnet_robust_x4.safetensors", "amnet_x4", ["amnet"]),
])
def test_a_ship_script_refuses_other_weights_under_a_shipped_name(tmp_path, script, weights, name, extra):
    import subprocess

    stem = extra[0] if script == "ship_renderer.sh" else "actor"
    ckpt = tmp_path / f"{stem}.safetensors"
    shutil.copy(ROOT / weights, ckpt)
    shutil.copy((ROOT / weights).with_suffix(".json"), ckpt.with_suffix(".json"))
    target = ROOT / Path(weights).parent / f"{name}.safetensors"
    before = target.read_bytes()
    arg = str(tmp_path) if script == "ship_renderer.sh" else str(ckpt)
    r = subprocess.run(["bash", str(ROOT / "scripts" / script), arg, name] + extra, capture_output=True, text=True)
    assert r.returncode == 2 and "exists with other weights" in r.stderr, (r.returncode, r.stderr)
    assert target.read_bytes() == before
