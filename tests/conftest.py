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


@pytest.fixture(scope="session", autouse=True)
def sb3_logdir(tmp_path_factory):
    """An SB3 model learning without a tensorboard_log makes a folder for its stdout logger, in /tmp unless
    SB3_LOGDIR names one: the tests' go under pytest's own temporary folder."""
    if "SB3_LOGDIR" not in os.environ:
        os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3_logs"))
        yield
        del os.environ["SB3_LOGDIR"]
    else:
        yield


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


@pytest.fixture(scope="session")
def hr_folder(tmp_path_factory, builtin_images):
    """The built-in images, cropped to 96x96, as a folder of PNGs (for the training entry points)."""
    import cv2

    d = tmp_path_factory.mktemp("hr")
    for name, img in zip(builtin_images.names, builtin_images, strict=True):
        cv2.imwrite(str(d / f"{name}.png"), cv2.cvtColor(img[:96, :96], cv2.COLOR_RGB2BGR))
    return d


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
