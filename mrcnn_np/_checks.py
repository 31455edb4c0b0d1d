"""Input checks shared by every public function.

Bad input must fail early with a message that names the argument and what is wrong
("boxes must have shape (N, 4), got (3, 5)"), never with an IndexError or a silent NaN
deep inside a loop. Each helper returns the array it checked (converted with
``np.asarray``) so callers write ``boxes = check_boxes(boxes)``.
"""

from __future__ import annotations

import numpy as np


class NonFiniteError(ValueError):
    """An array that must be finite holds NaN or inf (inside a training step: divergence)."""


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_array(x, name: str, ndim: int | None = None, last_dim: int | None = None,
                kinds: str = "fiu", finite: bool = False):
    """Return ``x`` as an array, raising ``ValueError`` if it does not fit.

    x: anything array-like (a NumPy or CuPy array is passed through unchanged).
    ndim: required number of dimensions; last_dim: required size of the last axis.
    kinds: allowed dtype kinds ("f" float, "i" signed int, "u" unsigned int, "b" bool).
    finite: if True, NaN or inf anywhere raises.
    """
    if x is None:
        raise ValueError(f"{name} is None; expected an array")
    if not hasattr(x, "__array_interface__") and not hasattr(x, "__cuda_array_interface__"):
        x = np.asarray(x)
    if x.dtype.kind not in kinds:
        raise ValueError(f"{name} must have a dtype of kind {kinds!r}, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        want = "(" + ", ".join(["N"] * (ndim - 1) + [str(last_dim) if last_dim else "M"]) + ")"
        raise ValueError(f"{name} must have shape {want}, got {_shape_str(x.shape)}")
    if last_dim is not None and x.shape[-1] != last_dim:
        raise ValueError(f"{name} must have last dimension {last_dim}, got shape {_shape_str(x.shape)}")
    if finite and x.size and x.dtype.kind == "f":
        xp = array_module(x)
        if not bool(xp.isfinite(x).all()):
            raise NonFiniteError(f"{name} contains NaN or inf")
    return x


def check_boxes(boxes, name: str = "boxes", finite: bool = True):
    """(N, 4) float boxes [x1, y1, x2, y2]; NaN/inf rejected unless ``finite=False``."""
    return check_array(boxes, name, ndim=2, last_dim=4, kinds="f", finite=finite)


def check_rois(rois, name: str = "rois", finite: bool = True):
    """(K, 5) float RoIs [batch_index, x1, y1, x2, y2]."""
    return check_array(rois, name, ndim=2, last_dim=5, kinds="f", finite=finite)


def check_features(x, name: str = "input"):
    """(N, C, H, W) float feature map."""
    return check_array(x, name, ndim=4, kinds="f")


def check_same_length(a, b, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {len(a)} and {len(b)}")


def array_module(x):
    """numpy for NumPy arrays, cupy for CuPy arrays (imported only when one is seen)."""
    if type(x).__module__.startswith("cupy"):
        import cupy  # noqa: PLC0415  (optional dependency)
        return cupy
    return np


def file_pair(path, what: str, error=ValueError):
    """(prefix.json, prefix.npz) of a weights or checkpoint pair given as its prefix, .npz or .json;
    ``error`` naming the file and ``what`` it should be when either file is missing."""
    from pathlib import Path  # noqa: PLC0415

    path = Path(path)
    prefix = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    js, npz = prefix.with_suffix(".json"), prefix.with_suffix(".npz")
    for f in (js, npz):
        if not f.is_file():
            raise error(f"{f}: {what} not found")
    return js, npz
