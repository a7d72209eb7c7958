import configparser
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_subpackages_import_under_blindsr_gym_only(tmp_path):
    # run outside the repository, so the root folders agents/ and renderers/ are not on sys.path
    code = ("import importlib.util, blindsr_gym.agents, blindsr_gym.renderers;"
            "print(importlib.util.find_spec('agents') is None, importlib.util.find_spec('renderers') is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_setup_cfg_installs_no_top_level_agents_or_renderers():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = cfg["options"]["packages"].split()
    assert all(p == "blindsr_gym" or p.startswith("blindsr_gym.") for p in packages)
    mapping = dict(line.split(" = ") for line in cfg["options"]["package_dir"].strip().splitlines())
    assert mapping["blindsr_gym.agents"] == "agents" and mapping["blindsr_gym.renderers"] == "renderers"


def _demo(*args):
    out = subprocess.run([sys.executable, "-m", "blindsr_gym.cli", "demo", "--json", "--sigmas", "2.0", *args],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_cli_demo_json_with_the_fake_renderer(tmp_path):
    result = _demo("--renderer", "bicubic", "--out", str(tmp_path))
    rows = result["rows"]
    assert len(rows) == 5 and result["figure"] == str(tmp_path / "demo.png") and (tmp_path / "demo.png").is_file()
    for r in rows:  # Eq. 8: the actor's PSNR minus the true kernel's
        assert r["reward"] == pytest.approx(r["actor_psnr"] - r["true_kernel_psnr"], abs=2e-3)
        assert 0.2 < r["sigma_estimate"] < 4.5
    assert all(r["true_kernel_niqe"] > r["hr_niqe"] for r in rows if r["image"] in ("astronaut", "chelsea"))


def test_cli_demo_with_the_shipped_renderer():
    from blindsr_gym.renderers import RendererCheckpointError, _resolve

    try:
        _resolve("amnet_x4")
    except RendererCheckpointError:
        pytest.skip("amnet_x4 is not shipped in this checkout yet")
    result = _demo("--no-figure")
    assert result["renderer_iterations"] > 0 and "figure" not in result
    # the trained renderer beats bicubic interpolation on every image, with the true kernel and with the
    # width the shipped actor reads; the actor reads widths near the truth (measured 1.61-2.33 for 2.0; gains
    # over bicubic 1.17-3.81 dB)
    rows = result["rows"]
    assert all(r["true_kernel_psnr"] > r["bicubic_psnr"] + 0.5 for r in rows)
    assert all(r["actor_psnr"] > r["bicubic_psnr"] + 0.5 for r in rows)
    assert all(1.4 < r["sigma_estimate"] < 2.6 for r in rows), [r["sigma_estimate"] for r in rows]


def test_cli_reports_bad_input():
    out = subprocess.run([sys.executable, "-m", "blindsr_gym.cli", "demo", "--lr-size", "40", "--renderer", "bicubic"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "192x192" in out.stderr


def test_readme_code_blocks_run_as_written(tmp_path):
    """Every Python block of the README, extracted and run in a fresh interpreter in an empty folder (so the
    registration idiom it shows is what makes the bare ids work, and what it writes is checked)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) == 2 and all("import blindsr_gym" in b for b in blocks)
    checks = ["\nfrom blindsr_gym.agents import load_actor\n"
              "a = load_actor('runs/td3/actor.safetensors')\n"
              "print('ran', type(a).__name__, a.window)",
              "\nprint('ran', type(reward).__name__, info['reward_name'])"]
    for code, check, want in zip(blocks, checks, ["ran SB3Actor (64, 64)", "ran float"], strict=True):
        out = subprocess.run([sys.executable, "-c", code + check], capture_output=True, text=True, timeout=600,
                             cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
        assert want in out.stdout, out.stdout


def test_readme_is_short_and_its_links_and_results_hold():
    """The README stays at its peers' size (<= 12 KB), its relative links resolve, and its results table is
    rows of docs/results.md (generated from the model cards), not numbers of its own."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert len(readme.encode()) <= 12_000
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    assert links and not [link for link in links if not (root / link).exists()]
    results = (root / "docs" / "results.md").read_text()
    rows = [line for line in readme.splitlines() if re.match(r"\| \w[\w-]* \| \d", line)]
    assert len(rows) == 5 and not [r for r in rows if r not in results]


def test_generated_docs_are_current():
    """docs/results.md and docs/cli.md are what their generators write now (the cards and the parser)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for script, what in (("table2_from_cards.py", "results_page"), ("cli_doc.py", "cli_page")):
        spec = importlib.util.spec_from_file_location(script[:-3], root / "scripts" / script)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        page = getattr(mod, what)()
        name = "results.md" if what == "results_page" else "cli.md"
        assert (root / "docs" / name).read_text() == page, f"docs/{name} is stale: run python scripts/{script}"


def test_contributing_examples_run_and_do_what_they_say():
    """CONTRIBUTING.md's code blocks (adding a metric, an evaluation method), run as written in a fresh
    interpreter, then used: the metric as a reward, the method in an evaluation."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "CONTRIBUTING.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    use = """
import gymnasium as gym
import blindsr_gym
from blindsr_gym.evaluate import evaluate, make_method, parse_kernels
from blindsr_gym.data import builtin
env = gym.make("BlindSR-v0", metric="sharpness", renderer="bicubic", lr_size=32, device="cpu")
_, info = env.reset(seed=0)
_, r, *_ = env.step(info["action_gt"])
assert abs(r) < 1e-6, r
(rec,) = evaluate({"b": builtin(mod=4)}, parse_kernels("sigma:2.0"), [make_method("nearest")], ["psnr"],
                  max_images=1, progress=False)
assert 15 < rec["psnr"] < 40, rec
print("contributing ok")
"""
    out = subprocess.run([sys.executable, "-c", "\n".join(blocks) + use], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "contributing ok" in out.stdout, out.stderr[-2000:]


def test_every_cli_flag_has_help_text():
    from blindsr_gym.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    missing = {name: [a.option_strings[0] if a.option_strings else a.dest for a in sp._actions
                      if not a.help and a.dest != "help"] for name, sp in sub.choices.items()}
    assert not any(missing.values()), missing
    for sp in sub.choices.values():
        assert sp.format_help()  # every help string formats (no stray % in it)


def test_no_trainer_imports_another_trainer():
    """The trainers share blindsr_gym.synthesis, blindsr_gym.training and agents/rollouts.py, never each other
    (agents/train.py, the command that dispatches to DDPG or SB3, is not a trainer)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    trainers = {"renderers/train.py": "blindsr_gym.renderers.train", "agents/ddpg.py": "blindsr_gym.agents.ddpg",
                "agents/pretrain.py": "blindsr_gym.agents.pretrain", "agents/sb3.py": "blindsr_gym.agents.sb3"}
    for path, own in trainers.items():
        package = own.rsplit(".", 1)[0]
        imported = set()
        for node in ast.walk(ast.parse((root / path).read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] + ("." + base if base else "")
                imported |= {base} | {f"{base}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        others = set(trainers.values()) - {own}
        assert not imported & others, f"{path} imports {imported & others}"


def test_the_commands_share_one_vocabulary_of_flags():
    """Every trainer takes the same names for the same things (older spellings stay as aliases)."""
    import argparse

    from blindsr_gym.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    shared = {"--out", "--data", "--batch", "--val-data", "--seed", "--device", "--threads", "--resume",
              "--no-progress"}
    for name in ("train", "train-renderer", "pretrain-actor", "train-kenet"):
        flags = {s for a in sub.choices[name]._actions for s in a.option_strings}
        assert shared <= flags, (name, shared - flags)
    train = sub.choices["train"]
    new = train.parse_args(["--steps", "8", "--out", "r", "--batch", "4", "--data", "d", "--val-data", "v"])
    old = train.parse_args(["--steps", "8", "--logdir", "r", "--batch-size", "4", "--dataset", "d",
                            "--eval-dataset", "v"])
    assert {k: v for k, v in vars(new).items() if k != "func"} == {k: v for k, v in vars(old).items() if k != "func"}


def test_relative_links_in_the_docs_resolve():
    import re

    root = Path(__file__).resolve().parents[1]
    pages = [root / "README.md", root / "CONTRIBUTING.md", root / "DEVELOPERS.md", *root.glob("docs/**/*.md")]
    broken = [f"{p.relative_to(root)}: {link}" for p in pages
              for link in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", p.read_text()) if not (p.parent / link).exists()]
    assert len(pages) > 20 and not broken, broken


def test_an_installed_copy_has_every_module_and_shipped_file(tmp_path):
    """pip installs every sub-package and package file the source tree has (a package missing from setup.cfg's
    list installs silently without it: blindsr_gym.evaluate once did). Installed from a copy, so no build/
    folder of the checkout, stale or fresh, takes part; imported from outside the checkout."""
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    for name in ("blindsr_gym", "agents", "renderers"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
                    "--no-compile", "--target", str(site), str(src)], check=True, capture_output=True, timeout=300)
    mapping = {"blindsr_gym": "blindsr_gym", "agents": "blindsr_gym/agents", "renderers": "blindsr_gym/renderers"}
    want = {mapping[p.parts[0]] + "/" + "/".join(p.parts[1:]) for name in mapping
            for p in (q.relative_to(src) for q in (src / name).rglob("*") if q.is_file())
            if p.suffix in (".py", ".npz", ".json", ".safetensors")}
    got = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()}
    assert not want - got, sorted(want - got)
    modules = sorted(w[:-3].replace("/", ".").removesuffix(".__init__") for w in want
                     if w.endswith(".py") and not w.endswith("__main__.py"))  # __main__ would run the CLI
    code = (f"import importlib; [importlib.import_module(m) for m in {modules!r}]; "
            "import blindsr_gym; print(blindsr_gym.__file__)")
    out = subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(site)}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith(str(site))
