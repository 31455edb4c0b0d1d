"""A tiny shapes data set and a tiny model config shared by the training tests."""

import pytest

from mrcnn_np.detection.config import preset, with_fields

TINY = with_fields(preset("teaching"), num_classes=6, **{
    "rpn.pre_nms_top_n_train": 200, "rpn.post_nms_top_n_train": 100, "rpn.pre_nms_top_n_test": 100,
    "rpn.post_nms_top_n_test": 50, "roi_heads.batch_size_per_image": 32, "detections_per_img": 20,
    "min_size": (64,), "max_size": 64})


@pytest.fixture(scope="session")
def shapes64(tmp_path_factory):
    """Folder with 6 train and 3 val 64x64 shapes images (the data/README.md layout)."""
    from mrcnn_np.datasets.shapes import generate_shapes

    out = tmp_path_factory.mktemp("shapes64")
    generate_shapes(out, n_train=6, n_val=3, size=64, seed=0, progress=False)
    return out
