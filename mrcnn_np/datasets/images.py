"""Reading an image file as (H, W, 3) uint8 RGB, whatever its format says.

The model takes 8-bit RGB. Pillow's ``convert("RGB")`` is right for most modes but not
all: it *clips* 16-bit values to 255 (a 16-bit PNG comes out almost all white). So:

    file mode                          read as
    ---------------------------------  -------------------------------------------------
    RGB; L (gray); 1 (bilevel);        Pillow's conversion to RGB (gray -> R = G = B,
      CMYK; YCbCr; LAB; HSV              1-bit -> 0 / 255)
    RGBA, LA, PA, RGBa                 alpha dropped: the colour as stored, not blended
                                         with any background (COCO's tools do the same)
    P (palette), with or without       palette looked up (transparency dropped as above)
      transparency
    I;16 / I;16B / I;16L (16-bit)      scaled to 8 bits: round(v * 255 / 65535)
    I (32-bit integer)                 scaled as 16-bit if every value is in 0..65535,
                                         otherwise refused (its range is unknown)
    F (32-bit float)                   refused (its range is unknown)
    16-bit RGB PNG                     Pillow reads it as 8-bit RGB (high byte)
    several frames (GIF, TIFF)         the first frame

EXIF orientation is **not** applied: the pixels are used as stored, like COCO (its JSON
width/height and annotations refer to the stored pixel grid). A JPEG whose EXIF tag says
"rotated" and whose JSON size is the rotated one is refused with a message saying so.
A missing, unreadable or truncated file, or (given ``expect_hw``) one whose size is not
the JSON's, raises ``DatasetError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrcnn_np.datasets.validate import DatasetError

_EXIF_ORIENTATION = 0x0112
_SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that rotate by 90 degrees (transpose the grid)


def _to_rgb(im) -> np.ndarray:
    """(H, W, 3) uint8 of an opened PIL image (see the module table)."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.int64)
        if mode == "I" and a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(f"32-bit integer image with values in [{a.min()}, {a.max()}]: its range is unknown")
        gray = ((a + 128) // 257).astype(np.uint8)  # round(v * 255 / 65535)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        raise ValueError("floating-point image (mode F): its range is unknown")
    if mode in ("P", "PA"):
        im = im.convert("RGBA")  # applies the palette and its transparency without a warning
    return np.asarray(im.convert("RGB"))


def read_rgb(path, expect_hw=None, context: str = "", unreadable: str = "cannot read image") -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file.

    expect_hw: (height, width) the file must have (the JSON's), or None.
    context: said after the file name in errors (e.g. "image id 7 in ann.json").
    unreadable: the words for a file that is not a readable image.
    """
    from PIL import Image  # noqa: PLC0415

    path = Path(path)
    where = f" ({context})" if context else ""
    if not path.is_file():
        raise DatasetError(f"{path}: image file not found{where}")
    try:
        with Image.open(path) as im:
            im.seek(0)
            size_hw = im.size[::-1]
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
            # The size is in the header: a file of the wrong size is refused before it is decoded.
            image = _to_rgb(im) if expect_hw is None or size_hw == tuple(expect_hw) else None
    except Exception as e:  # noqa: BLE001 (Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError...)
        raise DatasetError(f"{path}: {unreadable}{where}: {type(e).__name__}: {str(e)[:200]}") from None
    if image is None:
        h, w = expect_hw
        hint = ""
        if orientation in _SWAPS_SIDES and size_hw == (w, h):
            hint = (f"; its EXIF orientation ({orientation}) rotates it by 90 degrees, which this reader does "
                    f"not apply (like COCO): give the stored size, or save the image rotated")
        raise DatasetError(f"{path}: image is {size_hw[1]}x{size_hw[0]} (WxH) but {context or 'the JSON'} "
                           f"says width {w}, height {h}{hint}")
    return image
