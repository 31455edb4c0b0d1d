"""The pre-training classification set: determinism, class balance, split disjointness (from
each other and from every detection split), the classes' relation to the detection classes."""

import numpy as np
import pytest

from mrcnn_np.datasets import pretrain_shapes as ps
from mrcnn_np.datasets.shapes import SHAPES, scene_seed


def test_an_image_is_a_pure_function_of_seed_split_index():
    a, la = ps.make_batch(0, "train", [5, 6, 7])
    b, lb = ps.make_batch(0, "train", [7, 5])        # another order, another batch: same images
    np.testing.assert_array_equal(a[[2, 0]], b)
    np.testing.assert_array_equal(la[[2, 0]], lb)
    assert a.dtype == np.uint8 and a.shape == (3, 64, 64, 3)
    c, _ = ps.make_batch(1, "train", [5])            # another seed: another image
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])


def test_classes_are_balanced_in_every_window():
    assert len(ps.CLASSES) >= 20 and len(set(ps.CLASSES)) == len(ps.CLASSES)
    k = len(ps.CLASSES)
    for start in (0, 7, 1000):
        _, labels = ps.make_batch(0, "val", range(start, start + k))
        assert sorted(labels.tolist()) == list(range(k))
    _, labels = ps.make_batch(0, "train", range(64))
    counts = np.bincount(labels, minlength=k)
    assert counts.min() >= 64 // k and counts.max() <= 64 // k + 1


def test_train_and_val_share_no_image():
    train, _ = ps.make_batch(0, "train", range(48))
    val, _ = ps.make_batch(0, "val", range(48))
    flat_t = {im.tobytes() for im in train}
    assert len(flat_t) == 48 and not flat_t & {im.tobytes() for im in val}


def _first_draws(seeds):
    return {int(np.random.default_rng(s).integers(2**63)) for s in seeds}


def test_streams_are_disjoint_from_the_detection_splits():
    """No pre-training image uses the random stream of a detection scene (shapes and stick
    figures are both seeded by ``scene_seed``), over the seeds and sizes the studies use."""
    detection = [scene_seed(seed, split, i) for seed in range(3) for split, n in (("train", 2000), ("val", 200))
                 for i in range(n)]
    pretrain = [ps.image_seed(seed, split, i) for seed in range(2) for split in ("train", "val")
                for i in range(3000)]
    assert not _first_draws(detection) & _first_draws(pretrain)
    assert ps.image_seed(0, "train", 1).entropy[1] == ps.PRETRAIN_TAG


def test_every_detection_class_is_a_pretraining_class():
    """The overlap the module docstring states (as ImageNet overlaps COCO)."""
    assert sorted(ps.DETECTION_CLASS.values()) == sorted(SHAPES)
    assert set(ps.DETECTION_CLASS) <= set(ps.CLASSES)
    for name, det in ps.DETECTION_CLASS.items():
        assert f"``{name}``" in ps.__doc__ and det in ps.__doc__


@pytest.mark.parametrize("name", ps.CLASSES)
def test_every_class_draws_a_visible_object(name):
    rng = np.random.default_rng(0)
    mask = ps.paint_mask(ps.class_outline(name, 20.0, rng), 32, 32, 0.3, 64)
    assert 100 < mask.sum() < 64 * 64 * 0.6


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="split"):
        ps.image_seed(0, "test", 0)
    with pytest.raises(ValueError, match="label"):
        ps.random_image(0, len(ps.CLASSES))
    with pytest.raises(ValueError, match="min_size"):
        ps.PretrainShapesConfig(min_size=0.9, max_size=0.5)
