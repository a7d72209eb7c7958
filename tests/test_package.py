import configparser
import json
import subprocess
import sys
from pathlib import Path

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


def test_cli_demo_json():
    out = subprocess.run([sys.executable, "-m", "blindsr_gym.cli", "demo", "--json", "--sigmas", "2.0"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)["rows"]
    assert len(rows) == 5 and all(r["lr_shape"] == [64, 64] for r in rows)
    assert all(r["bicubic_niqe"] > r["hr_niqe"] for r in rows if r["image"] in ("astronaut", "chelsea"))


def test_cli_reports_bad_input():
    out = subprocess.run([sys.executable, "-m", "blindsr_gym.cli", "demo", "--lr-size", "40"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "192x192" in out.stderr
