"""Execute the notebooks top to bottom and save them with their outputs (what GitHub shows).

    python scripts/run_notebooks.py                 # all of notebooks/*.ipynb, in place
    python scripts/run_notebooks.py notebooks/02_reward_design.ipynb

CI executes them too (tests/test_notebooks.py) without saving. Run this after editing a notebook and commit
the result, so that the saved outputs are the current code's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, timeout: int = 900):
    """The notebook at ``path``, executed in its folder (raises on the first failing cell)."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    args = p.parse_args(argv)
    import nbformat

    for path in args.paths or sorted((ROOT / "notebooks").glob("*.ipynb")):
        t0 = time.perf_counter()
        nb = execute(path)
        for cell in nb.cells:  # keep diffs small: no execution timestamps
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, path)
        print(f"{path.name}: executed and saved in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
