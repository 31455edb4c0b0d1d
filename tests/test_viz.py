"""Drawing helpers of the images/instances section of mrcnn_np.viz."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mrcnn_np.datasets.shapes import random_scene  # noqa: E402
from mrcnn_np.viz import draw_instances, overlay_masks, show_samples  # noqa: E402


def test_draw_instances_draws_every_instance():
    s = random_scene(4, min_objects=3, max_objects=3)
    ax = draw_instances(s["image"], s["boxes"], s["labels"], s["masks"], np.array([0.9, 0.5, 0.25]),
                        s["class_names"])
    assert len(ax.patches) == 3
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == f"{s['class_names'][s['labels'][0]]} 0.90" and texts[2].endswith("0.25")
    plt.close(ax.figure)


def test_draw_instances_float_image_and_no_instances():
    ax = draw_instances(np.full((8, 8, 3), 0.5))
    assert len(ax.patches) == 0 and len(ax.images) == 1
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="image must have shape"):
        draw_instances(np.zeros((8, 8)))


def test_overlay_tints_only_mask_pixels():
    img = np.full((4, 4, 3), 100, np.uint8)
    masks = np.zeros((1, 4, 4), np.float32)
    masks[0, :2] = 0.9  # probabilities: > 0.5 is inside
    masks[0, 2] = 0.4
    out = overlay_masks(img, masks)
    np.testing.assert_allclose(out[2:], 100 / 255)
    assert not np.allclose(out[:2], 100 / 255)


def test_show_samples_grid():
    scenes = [random_scene(i, size=64) for i in range(5)]
    fig = show_samples(scenes, n=5, cols=3)
    assert len(fig.axes) == 6 and not fig.axes[5].axison
    assert sum(len(ax.patches) for ax in fig.axes) == sum(len(s["labels"]) for s in scenes)
    plt.close(fig)
