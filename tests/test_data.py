import cv2
import numpy as np
import pytest

from blindsr_gym.data import ImageFolder, ImageReadError, benchmark, builtin, read_image


@pytest.fixture
def folder(tmp_path):
    # smooth colour ramps (JPEG-friendly), distinct per channel so a BGR/RGB swap is caught
    yy, xx = np.mgrid[0:50, 0:62]
    rgb = np.stack([xx * 4, yy * 5, 255 - xx * 2 - yy * 2], axis=-1).clip(0, 255).astype(np.uint8)
    bgr = rgb[..., ::-1]
    cv2.imwrite(str(tmp_path / "a.png"), bgr)
    cv2.imwrite(str(tmp_path / "b.bmp"), bgr)
    cv2.imwrite(str(tmp_path / "c.tif"), bgr)
    cv2.imwrite(str(tmp_path / "d.webp"), bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])  # lossless
    cv2.imwrite(str(tmp_path / "e.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    cv2.imwrite(str(tmp_path / "f_gray.png"), rgb[..., 0])
    cv2.imwrite(str(tmp_path / "g_rgba.png"), np.dstack([bgr, np.full((50, 62), 7, np.uint8)]))
    cv2.imwrite(str(tmp_path / "h_16bit.png"), (bgr.astype(np.uint16) * 257))
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path, rgb


def test_reads_formats_and_converts(folder):
    path, rgb = folder
    ds = ImageFolder(path)
    assert ds.names == ["a.png", "b.bmp", "c.tif", "d.webp", "e.jpg", "f_gray.png", "g_rgba.png", "h_16bit.png"]
    for i in (0, 1, 2, 3, 7):
        img = ds[i]
        assert img.dtype == np.uint8 and img.shape == (50, 62, 3)
        assert np.array_equal(img, rgb), ds.names[i]
    assert np.abs(ds[4].astype(int) - rgb).mean() < 3  # JPEG q100
    gray = ds[5]
    assert gray.shape == (50, 62, 3) and np.array_equal(gray[..., 1], rgb[..., 0])
    assert np.array_equal(ds[6], rgb)  # alpha dropped
    assert np.array_equal(ds[-8], ds[0])
    with pytest.raises(IndexError):
        ds[8]


def test_mod_crop_and_random_crop(folder):
    path, rgb = folder
    ds = ImageFolder(path, mod=4)
    assert ds[0].shape == (48, 60, 3) and np.array_equal(ds[0], rgb[:48, :60])
    c1, i1 = ds.random_crop(np.random.default_rng(3), 32)
    c2, i2 = ds.random_crop(np.random.default_rng(3), 32)
    assert c1.shape == (32, 32, 3) and i1 == i2 and np.array_equal(c1, c2)
    crop, idx = ds.random_crop(np.random.default_rng(0), 16, index=0)
    assert idx == 0
    # the crop is a sub-window of the image
    img = ds[0]
    hits = [(t, l) for t in range(48 - 15) for l in range(60 - 15) if np.array_equal(img[t:t + 16, l:l + 16], crop)]
    assert hits
    with pytest.raises(ImageReadError, match="a.png.*too small"):
        ds.random_crop(np.random.default_rng(0), 64, index=0)
    with pytest.raises(TypeError):
        ds.random_crop(0, 16)


def test_bad_inputs_name_the_path(tmp_path, folder):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageFolder(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.txt").write_text("x")
    with pytest.raises(ImageReadError, match="no images"):
        ImageFolder(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (bad / "zero.jpg").write_bytes(b"")
    ds = ImageFolder(bad)
    with pytest.raises(ImageReadError, match="broken.png"):
        ds[0]
    with pytest.raises(ImageReadError, match="zero.jpg"):
        ds[1]
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="mod"):
        ImageFolder(folder[0], mod=0)


def test_builtin():
    ds = builtin(mod=4)
    assert ds.names == ["astronaut", "chelsea", "coffee", "rocket", "motorcycle"]
    for img in ds:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert img.shape[0] % 4 == 0 and img.shape[1] % 4 == 0 and min(img.shape[:2]) >= 256
        assert img.std() > 20  # a real photograph, not a blank


@pytest.mark.data
def test_benchmarks_on_shared_data(data_root):
    for name, n in (("Set5", 5), ("set14", 14), ("BSD100", 100)):
        ds = benchmark(name, data_root / "test")
        assert len(ds) == n
        img = ds[0]
        assert img.shape[0] % 4 == 0 and img.shape[1] % 4 == 0
    with pytest.raises(ValueError, match="unknown benchmark"):
        benchmark("Set6", data_root / "test")
    with pytest.raises(FileNotFoundError, match="Urban100"):
        benchmark("Urban100", data_root / "test")
