"""A tiny shapes data set, a tiny model config and a short recipe shared by the training tests."""

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


@pytest.fixture(scope="session")
def train_set(shapes64):
    """The train split of ``shapes64`` as a CocoDataset."""
    from mrcnn_np.engine.data import shapes_split

    return shapes_split(shapes64, "train")


def tiny_cfg(tmp_path, name, **kw):
    """A 6-iteration recipe (batch 2, warmup 2, lr x0.1 at 50 %, checkpoints every 3) writing
    to ``tmp_path / name``; ``kw`` overrides fields."""
    from mrcnn_np.engine.train import TrainConfig

    base = dict(iterations=6, batch_size=2, lr=0.01, warmup_iters=2, milestones=(0.5,), checkpoint_every=3,
                log_every=0, out_dir=str(tmp_path / name), clip=10.0)
    return TrainConfig(**dict(base, **kw))
