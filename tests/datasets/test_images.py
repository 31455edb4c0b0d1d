"""Reading image files of every mode as (H, W, 3) uint8 (datasets/images.py), and refusing
what cannot be read, with the file's name (issue 16, item 6)."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mrcnn_np.datasets.images import read_rgb
from mrcnn_np.datasets.validate import DatasetError
from mrcnn_np.engine.data import read_image_file


def test_16_bit_gray_png_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257, 32768], [65535, 1000, 60000]], np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    rgb = read_rgb(tmp_path / "g16.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb[..., 0], np.rint(a * 255.0 / 65535).astype(np.uint8))
    assert (rgb[..., 0] == rgb[..., 2]).all()
    np.testing.assert_array_equal(read_image_file(tmp_path / "g16.png"), rgb)  # predict reads the same way


def test_32_bit_images(tmp_path):
    Image.fromarray(np.array([[0, 65535]], np.int32), mode="I").save(tmp_path / "i.tif")
    np.testing.assert_array_equal(read_rgb(tmp_path / "i.tif")[0, :, 0], [0, 255])
    Image.fromarray(np.array([[0, 70000]], np.int32), mode="I").save(tmp_path / "big.tif")
    with pytest.raises(DatasetError, match=r"big\.tif: cannot read image.*range is unknown"):
        read_rgb(tmp_path / "big.tif")
    Image.fromarray(np.array([[0.0, 0.5]], np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.raises(DatasetError, match=r"f\.tif: cannot read image.*floating-point"):
        read_rgb(tmp_path / "f.tif")


def _png_16bit_rgb(path, rgb16):
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16_bit_rgb_png(tmp_path):
    rgb16 = np.array([[[0, 32896, 65535], [65535, 0, 12850]]], np.uint16)
    _png_16bit_rgb(tmp_path / "c16.png", rgb16)
    got = read_rgb(tmp_path / "c16.png").astype(int)
    assert np.abs(got - rgb16 / 257.0).max() <= 1  # the high byte: at most 1 level from exact rounding


def test_palette_alpha_cmyk_and_bilevel(tmp_path):
    p = Image.new("P", (4, 2))
    p.putpalette([0, 0, 0, 200, 10, 20] + [0] * 762)
    p.putpixel((1, 0), 1)
    p.info["transparency"] = 0
    p.save(tmp_path / "p.png")
    got = read_rgb(tmp_path / "p.png")
    assert got[0, 1].tolist() == [200, 10, 20] and got[0, 0].tolist() == [0, 0, 0]  # alpha dropped, not blended
    Image.fromarray(np.array([[[90, 0], [90, 255]]], np.uint8), mode="LA").save(tmp_path / "la.png")
    assert read_rgb(tmp_path / "la.png")[0].tolist() == [[90, 90, 90], [90, 90, 90]]
    Image.new("RGBA", (3, 2), (10, 20, 30, 0)).save(tmp_path / "rgba.png")
    assert read_rgb(tmp_path / "rgba.png")[1, 2].tolist() == [10, 20, 30]
    Image.new("CMYK", (3, 2), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    assert read_rgb(tmp_path / "cmyk.jpg").shape == (2, 3, 3) and read_rgb(tmp_path / "cmyk.jpg").min() > 240
    b = Image.new("1", (3, 2), 0)
    b.putpixel((2, 1), 1)
    b.save(tmp_path / "b.png")
    assert read_rgb(tmp_path / "b.png")[..., 0].tolist() == [[0, 0, 0], [0, 0, 255]]


def test_exif_orientation_is_not_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new("RGB", (40, 20), (50, 60, 70)).save(tmp_path / "r.jpg", exif=exif)
    assert read_rgb(tmp_path / "r.jpg").shape == (20, 40, 3)  # stored grid, as COCO
    assert read_rgb(tmp_path / "r.jpg", expect_hw=(20, 40)).shape == (20, 40, 3)
    with pytest.raises(DatasetError, match=r"r\.jpg: image is 40x20 .*EXIF orientation \(6\).*not apply"):
        read_rgb(tmp_path / "r.jpg", expect_hw=(40, 20))


def test_truncated_missing_and_wrong_size(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"t\.png: cannot read image \(image id 3\)"):
        read_rgb(tmp_path / "t.png", context="image id 3")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "j.jpg")
    (tmp_path / "j.jpg").write_bytes((tmp_path / "j.jpg").read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"j\.jpg: cannot read image"):
        read_rgb(tmp_path / "j.jpg")
    with pytest.raises(DatasetError, match=r"nope\.png: image file not found \(image id 4\)"):
        read_rgb(tmp_path / "nope.png", context="image id 4")
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "s.png")
    with pytest.raises(DatasetError, match=r"s\.png: image is 6x8 \(WxH\) but x\.json says width 8, height 6"):
        read_rgb(tmp_path / "s.png", expect_hw=(6, 8), context="x.json")
    with pytest.raises(DatasetError, match="image file not found"):
        read_rgb(tmp_path)  # a folder is not an image file
