"""Refit the shipped PCA kernel codec: python scripts/fit_codec.py [--size 21]

Writes blindsr_gym/assets/codec_isotropic_k<size>.npz and prints its hash and reconstruction error.
"""

import argparse
import json
from pathlib import Path

from blindsr_gym.kernels import IsotropicFamily, KernelCodec

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--size", type=int, default=21)
ap.add_argument("--n", type=int, default=20000)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
fam = IsotropicFamily(size=args.size)
codec = KernelCodec.fit(fam, n=args.n, seed=args.seed)
out = Path(__file__).resolve().parents[1] / "blindsr_gym" / "assets" / f"codec_isotropic_k{args.size}.npz"
codec.save(out)
print(json.dumps({"file": str(out.name), "hash": codec.hash,
                  "reconstruction_error": codec.reconstruction_error(fam)}, indent=1))
