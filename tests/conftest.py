import os
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA_ROOT = Path(os.environ.get("BLINDSR_DATA", SHARED_DATA))

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(params=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def device(request):
    return torch.device(request.param)


@pytest.fixture(scope="session")
def data_root():
    """../shared/data (or $BLINDSR_DATA); tests that need it skip when it is absent."""
    if not (DATA_ROOT / "test").is_dir():
        pytest.skip(f"real SR data not found at {DATA_ROOT} (set BLINDSR_DATA to the shared data folder)")
    return DATA_ROOT


@pytest.fixture(scope="session")
def builtin_images():
    from blindsr_gym.data import builtin

    return builtin()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
