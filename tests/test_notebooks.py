"""The notebooks run top to bottom (with the fake renderer when the shipped weights are absent)."""

import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the notebooks need the dev or notebooks extra")
    nbclient = pytest.importorskip("nbclient", reason="the notebooks need the dev or notebooks extra")
    from blindsr_gym.renderers import RendererCheckpointError, _resolve

    try:
        _resolve("amnet_x4")
    except RendererCheckpointError:
        monkeypatch.setenv("BLINDSR_NOTEBOOK_RENDERER", "bicubic")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
