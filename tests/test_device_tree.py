"""scripts/device_tree.sh, in a throw-away git repository: `size` counts what a device call would send, and
`on` / `off` untrack the large files and bring every byte back."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device_tree.sh"
KIB = 1024

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    (r / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, r / "scripts" / "device_tree.sh")
    _git(r, "init", "-q", "-b", "main")
    _git(r, "config", "user.email", "t@example.com")
    _git(r, "config", "user.name", "t")
    (r / ".gitignore").write_text("/runs/\n/.device/\n")
    _write(r / "code.py", 10 * KIB)                         # tracked, travels
    _write(r / "checkpoints" / "big.pt", 300 * KIB)         # tracked, LARGE: left behind
    _write(r / "renderers" / "weights" / "dan_x4.safetensors", 200 * KIB)  # tracked, LARGE
    _git(r, "add", "-A")
    _git(r, "commit", "-q", "-m", "init")
    _write(r / "notes.txt", 3 * KIB)                        # untracked, not ignored: travels
    _write(r / "runs" / "log.txt", 50 * KIB)                # ignored, not carried: stays
    _write(r / ".device" / "whl" / "gymnasium-1.4.0-py3-none-any.whl", 20 * KIB)
    _write(r / ".device" / "data" / "a.webp", 40 * KIB)
    return r


def _size(repo: Path, *carry: str, drop: str = "") -> tuple[int, str]:
    env = {"PATH": "/usr/bin:/bin", "DROP": drop}
    p = subprocess.run(["bash", "scripts/device_tree.sh", "size", *carry], cwd=repo, capture_output=True,
                       text=True, env=env)
    return p.returncode, p.stdout + p.stderr


def _kib(out: str, what: str) -> int:
    return int(re.search(rf"(\d+) KiB {re.escape(what)}", out).group(1))


def test_size_counts_the_tree_less_the_large_files_plus_each_carried_path(repo: Path) -> None:
    script = SCRIPT.stat().st_size + len("/runs/\n/.device/\n")   # the script and .gitignore travel too
    rc, out = _size(repo)
    assert rc == 0 and out.endswith(": ok\n"), out
    assert _kib(out, "tree") == (10 * KIB + 3 * KIB + script) // KIB
    rc, out = _size(repo, ".device/whl", ".device/data")
    assert rc == 0, out
    assert _kib(out, ".device/whl") == 20 and _kib(out, ".device/data") == 40
    # DROP leaves more behind: the untracked notes count until dropped
    rc, out = _size(repo, drop="notes.txt code.py")
    assert _kib(out, "tree") == script // KIB


def test_size_fails_over_the_limit_and_on_a_missing_carry(repo: Path) -> None:
    with open(repo / ".device" / "data" / "huge.bin", "wb") as f:
        f.truncate(64 * 1024 * KIB)   # sparse; its apparent size is what travels
    rc, out = _size(repo, ".device/whl")
    assert rc == 0, out
    rc, out = _size(repo, ".device")
    assert rc == 1 and "OVER" in out, out
    rc, out = _size(repo, ".device/nothing")
    assert rc == 2 and "does not exist" in out


def test_on_then_off_untracks_the_large_files_and_restores_them(repo: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    exclude = (repo / ".git" / "info" / "exclude").read_text()
    p = subprocess.run(["bash", "scripts/device_tree.sh", "on"], cwd=repo, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "device-tree"
    tracked = _git(repo, "ls-files").split()
    assert "code.py" in tracked and "checkpoints/big.pt" not in tracked
    assert "renderers/weights/dan_x4.safetensors" not in tracked
    assert "travels:" in p.stdout and ".device/whl" in p.stdout           # the suite's and a lease's carry
    assert _git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    p = subprocess.run(["bash", "scripts/device_tree.sh", "off"], cwd=repo, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "byte-identical" in p.stdout
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert "device-tree" not in _git(repo, "branch")
    assert (repo / ".git" / "info" / "exclude").read_text() == exclude
    after = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before


def test_on_refuses_uncommitted_changes(repo: Path) -> None:
    (repo / "code.py").write_text("changed")
    p = subprocess.run(["bash", "scripts/device_tree.sh", "on"], cwd=repo, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 1 and "commit or stash" in p.stderr
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
