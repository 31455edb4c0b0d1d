"""Whose folder is it? Data set generators write only into folders they made themselves.

``generate_shapes`` and ``generate_keypoints`` write annotations/{train,val}.json, train/,
val/, stats.json and params.json. Pointed at a folder that holds someone's own data set
(the same layout is the natural one for COCO-format data), they would overwrite it. So a
generator first claims its output folder: it writes a marker file there, and refuses a
folder that already holds any of those paths but no marker, unless told to overwrite
(``overwrite=True``, the CLI's ``--overwrite``). Re-running a generator on its own folder
(``ensure_shapes`` regenerating a set whose configuration changed, an interrupted run)
is allowed, as before.
"""

from __future__ import annotations

import json
from pathlib import Path

# Written first into every folder a generator makes: later runs may then rewrite it.
GENERATED_MARKER = ".mrcnn_np_generated"
_GENERATED_FILES = ("annotations/train.json", "annotations/val.json", "train", "val", "stats.json", "params.json")


def claim_output_dir(out, overwrite: bool = False) -> None:
    """Make ``out`` a generator's folder, refusing one that holds files a generator did not make.

    A folder is the generator's own if it has the ``GENERATED_MARKER`` file or a params.json
    with a ``generator_version`` (sets made before the marker existed). Otherwise, if any
    path a generator writes (annotations/{train,val}.json, train/, val/, stats.json,
    params.json) already exists, someone else's data set may be there: raise ValueError
    unless ``overwrite`` (the CLI's ``--overwrite``). Other files in ``out`` are never touched.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder (the data set's output folder)")
    if not (out / GENERATED_MARKER).is_file() and not overwrite:
        try:
            owned = "generator_version" in json.loads((out / "params.json").read_text())
        except (OSError, ValueError, TypeError):
            owned = False
        found = [name for name in _GENERATED_FILES if (out / name).exists()]
        if found and not owned:
            raise ValueError(f"{out}: already holds {', '.join(found)}, not made by this generator; refusing to "
                             f"overwrite them (choose another output folder, or pass --overwrite / "
                             f"overwrite=True to replace them)")
    out.mkdir(parents=True, exist_ok=True)
    (out / GENERATED_MARKER).write_text("made by mrcnn_np's data set generator; it may rewrite this folder\n")
