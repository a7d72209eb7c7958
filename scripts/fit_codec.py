"""Refit a shipped PCA kernel codec: python scripts/fit_codec.py [--size 21] [--length 15]

Writes blindsr_gym/assets/codec_isotropic_k<size>[_l<length>].npz (length 15: AMNet-RL's; 10: DAN's)
and prints its hash and reconstruction error.
"""

import argparse
import json
from pathlib import Path

from blindsr_gym.kernels import IsotropicFamily, KernelCodec, _codec_file

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--size", type=int, default=21)
ap.add_argument("--n", type=int, default=20000)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--length", type=int, default=15)
args = ap.parse_args()
fam = IsotropicFamily(size=args.size)
codec = KernelCodec.fit(fam, n=args.n, seed=args.seed, length=args.length)
out = Path(__file__).resolve().parents[1] / "blindsr_gym" / "assets" / _codec_file(args.size, args.length)
codec.save(out)
print(json.dumps({"file": str(out.name), "hash": codec.hash,
                  "reconstruction_error": codec.reconstruction_error(fam)}, indent=1))
