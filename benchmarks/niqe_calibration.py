"""NIQE against the MATLAB release on pyiqa's calibration images, ours and pyiqa side by side; prints JSON.

    python benchmarks/niqe_calibration.py      (needs the pyiqa extra: its wheel ships the images)

MATLAB values: pyiqa's ResultsCalibra/ResultsCalibra.md, row "NIQE (org)" (rgb2gray input).
"""

import json
import sys
from pathlib import Path

import pyiqa

from blindsr_gym.data import read_image
from blindsr_gym.metrics import niqe
from blindsr_gym.metrics.pyiqa_adapter import seed_pyiqa_cache
from blindsr_gym.utils import to_tensor

MATLAB = {"I03.bmp": 15.7536, "I04.bmp": 3.6549, "I06.bmp": 3.2355, "I08.bmp": 3.1840, "I19.bmp": 8.6352}


def main() -> None:
    seed_pyiqa_cache()
    theirs = pyiqa.create_metric("niqe", device="cpu")
    folder = Path(pyiqa.__file__).resolve().parents[1] / "ResultsCalibra" / "dist_dir"
    rows, err = {}, {"ours": 0.0, "pyiqa": 0.0}
    for name, ref in MATLAB.items():
        x = to_tensor(read_image(folder / name))
        vals = {"ours": float(niqe(x)[0]), "pyiqa": float(theirs(x))}
        rows[name] = {"matlab": ref, **{k: round(v, 4) for k, v in vals.items()},
                      **{f"{k}_minus_matlab": round(v - ref, 4) for k, v in vals.items()}}
        for k, v in vals.items():
            err[k] += abs(v - ref)
    print(json.dumps({"command": "python " + " ".join(sys.argv), "pyiqa": pyiqa.__version__, "images": rows,
                      "total_abs_error": {k: round(v, 3) for k, v in err.items()}}, indent=1))


if __name__ == "__main__":
    main()
