"""HR image sources: any folder of images, the built-in sample images, and the SR benchmark sets.

Every source is a sequence of uint8 HWC RGB images with ``names``; ``random_crop`` draws from an
explicit ``numpy.random.Generator``. Images that cannot be decoded raise :class:`ImageReadError`
naming the file: a bad file never becomes a silent black image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from blindsr_gym.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "read_image", "ImageSource", "ImageFolder",
           "ImageList", "builtin", "benchmark", "BENCHMARKS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

#: Names accepted by :func:`benchmark`, with the sub-folders tried under ``root/<name>``.
BENCHMARKS = ("Set5", "Set14", "BSD100", "Urban100", "Manga109", "DIV2K")
_SUBDIRS = ("", "HR", "GTmod12", "original", "image_SRF_4/HR", "DIV2K_valid_HR")

#: The natural photographs scikit-image ships (loaded without network access).
BUILTIN_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")


class ImageReadError(InputError):
    """An image file is missing, unreadable, corrupt, or unsuitable (e.g. too small)."""


def _to_rgb8(img: np.ndarray, origin: str, bgr: bool = False) -> np.ndarray:
    """uint8 HWC RGB from an 8/16-bit array. ``bgr``: the array is in cv2's channel order (a decoded
    file), converted once here; in-memory arrays are RGB(A) and keep their order."""
    if img.dtype == np.uint16:
        img = np.floor(img.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageReadError(f"{origin}: unsupported pixel type {img.dtype} (need 8- or 16-bit)")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[..., :3]  # alpha dropped
        if bgr:
            img = img[..., ::-1]
    else:
        raise ImageReadError(f"{origin}: unsupported image shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageReadError(f"{origin}: empty image")
    return np.ascontiguousarray(img)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 HWC RGB. Grayscale is replicated; alpha is dropped;
    16-bit is scaled to 8-bit. Raises :class:`ImageReadError` naming the file on any failure."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read ({e})") from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageReadError(f"{path}: cannot decode image (corrupt, truncated or unsupported format)")
    return _to_rgb8(img, str(path), bgr=True)


class ImageSource(Sequence):
    """A sequence of HR images (uint8 HWC RGB), mod-cropped to a multiple of ``mod``."""

    names: list[str]

    def __init__(self, mod: int = 1):
        if not isinstance(mod, (int, np.integer)) or mod < 1:
            raise InputError(f"mod must be a positive integer (the scale factor), got {mod!r}")
        self.mod = int(mod)

    def _load(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> np.ndarray:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(f"image index {i} out of range for {len(self)} images")
        img = self._load(int(i) % len(self))
        h, w = img.shape[:2]
        return img[: h - h % self.mod, : w - w % self.mod]

    def random_crop(self, rng: np.random.Generator, size: int, index: int | None = None
                    ) -> tuple[np.ndarray, int]:
        """A ``size`` x ``size`` crop of image ``index`` (drawn from ``rng`` when None) at a random
        position drawn from ``rng``. Returns ``(crop, index)``."""
        index, top, left = self.random_window(rng, size, index)
        return self[index][top:top + size, left:left + size], index

    def random_window(self, rng: np.random.Generator, size: int, index: int | None = None,
                      shape: tuple[int, int] | None = None) -> tuple[int, int, int]:
        """``(index, top, left)`` of a random ``size`` x ``size`` window, with the draws of :meth:`random_crop`
        (the index when None, then top, then left). ``shape``: the image's (H, W) when the caller knows it
        (no image is read then)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise InputError(f"crop size must be a positive integer, got {size!r}")
        if index is None:
            index = int(rng.integers(len(self)))
        h, w = shape if shape is not None else self[index].shape[:2]
        if h < size or w < size:
            raise ImageReadError(f"{self.names[index]}: image is {h}x{w}, too small for a {size}x{size} crop")
        top = int(rng.integers(h - size + 1))
        left = int(rng.integers(w - size + 1))
        return int(index), top, left

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images, mod={self.mod})"


class ImageFolder(ImageSource):
    """The images in ``path`` (png, jpg, bmp, tif, webp), sorted by file name.

    ``recursive``: also look in sub-folders. ``cache``: keep decoded images in memory.
    """

    def __init__(self, path: str | Path, mod: int = 1, recursive: bool = False, cache: bool = False):
        super().__init__(mod)
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise FileNotFoundError(f"image folder not found: {self.path}")
        if not self.path.is_dir():
            raise NotADirectoryError(f"not a folder: {self.path}")
        pattern = "**/*" if recursive else "*"
        self.files = sorted(p for p in self.path.glob(pattern)
                            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                            and not p.name.startswith("."))
        if not self.files:
            raise ImageReadError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {self.path}")
        self.names = [str(p.relative_to(self.path)) for p in self.files]
        self.cache = cache
        self._cache: dict[int, np.ndarray] = {}

    def _load(self, i: int) -> np.ndarray:
        if i in self._cache:
            return self._cache[i]
        img = read_image(self.files[i])
        if self.cache:
            self._cache[i] = img
        return img

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.path)!r}, {len(self)} images, mod={self.mod})"


class ImageList(ImageSource):
    """In-memory images with names: uint8 (or 16-bit) HWC arrays in RGB(A) order, or grayscale HW.
    RGB arrays are kept as they are (alpha dropped); arrays read with cv2 must be converted from BGR
    by the caller (or read with :func:`read_image`)."""

    def __init__(self, images: Sequence[np.ndarray], names: Sequence[str], mod: int = 1):
        super().__init__(mod)
        if len(images) != len(names) or not images:
            raise InputError("images and names must be non-empty and of equal length")
        self.images = [_to_rgb8(np.asarray(im), n) for im, n in zip(images, names, strict=True)]
        self.names = list(names)

    def _load(self, i: int) -> np.ndarray:
        return self.images[i]


def builtin(mod: int = 1) -> ImageList:
    """The default data set: natural RGB photographs shipped with scikit-image (no network).

    astronaut 512x512, chelsea 300x451, coffee 400x600, rocket 427x640, motorcycle 500x741.
    """
    import skimage.data as skd

    images = []
    for name in BUILTIN_NAMES:
        img = skd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skd, name)()
        images.append(img)
    return ImageList(images, list(BUILTIN_NAMES), mod=mod)


def benchmark(name: str, root: str | Path, scale: int = 4) -> ImageFolder:
    """A benchmark set (Set5, Set14, BSD100, Urban100, Manga109, DIV2K) as a folder of HR images
    under ``root``, mod-cropped to ``scale`` (BSD100's odd sizes need it)."""
    match = {b.lower(): b for b in BENCHMARKS}.get(str(name).lower())
    if match is None:
        raise InputError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"benchmark root folder not found: {root}")
    candidates = [d for d in root.iterdir() if d.is_dir() and d.name.lower() == match.lower()]
    for base in candidates:
        for sub in _SUBDIRS:
            d = base / sub
            if d.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in d.iterdir()):
                return ImageFolder(d, mod=scale)
    raise FileNotFoundError(f"no {match} images under {root} (looked for {root / match} and "
                            f"its sub-folders {', '.join(s for s in _SUBDIRS if s)})")
