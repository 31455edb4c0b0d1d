"""mrcnn_np.viz.keypoints: skeleton edges only between labelled joints, hidden joints hollow, the target grid."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mrcnn_np.datasets.keypoints import SKELETON, random_keypoint_scene  # noqa: E402
from mrcnn_np.detection.keypoint_head import keypoints_to_heatmap  # noqa: E402
from mrcnn_np.viz import draw_keypoint_target, draw_keypoints, draw_skeletons  # noqa: E402


def _labelled_edges(kp):
    return sum(1 for inst in kp for a, b in SKELETON if inst[a, 2] > 0 and inst[b, 2] > 0)


def test_edges_and_dots_follow_the_visibility_flags():
    kp = np.zeros((2, 13, 3), np.float32)
    kp[..., 0], kp[..., 1] = np.arange(13) * 4 + 10, 20
    kp[0, :, 2] = 2
    kp[1, :, 2] = 1                     # every joint hidden but labelled
    kp[1, 0] = 0                        # the head of figure 1 unlabelled: its two edges go
    ax = draw_skeletons(kp, SKELETON)
    assert len(ax.lines) == _labelled_edges(kp) == 2 * len(SKELETON) - 2
    filled, hollow = ax.collections[0::2], ax.collections[1::2]
    assert [len(c.get_offsets()) for c in filled] == [13, 0] and [len(c.get_offsets()) for c in hollow] == [0, 12]
    # drawn at pixel centres: keypoint x = 10 (pixel edge) sits at imshow coordinate 9.5
    assert filled[0].get_offsets()[0].tolist() == [9.5, 19.5]
    ax = draw_skeletons(kp, SKELETON, visibility=False)         # predictions: every joint, every edge
    assert len(ax.lines) == 2 * len(SKELETON)
    plt.close("all")


def test_draw_keypoints_on_a_scene_and_bad_input():
    s = random_keypoint_scene(3)
    ax = draw_keypoints(s["image"], s["keypoints"], s["skeleton"], s["boxes"], s["masks"], title="t")
    assert len(ax.lines) == _labelled_edges(s["keypoints"]) and len(ax.patches) == len(s["boxes"])
    assert ax.get_xlim() == (-0.5, 127.5)                     # the view stays the image
    with pytest.raises(ValueError, match="keypoints must have shape"):
        draw_skeletons(np.zeros((2, 13)))
    with pytest.raises(ValueError, match="skeleton edges"):
        draw_skeletons(s["keypoints"], [(0, 13)])
    plt.close("all")


def test_target_grid_lights_one_cell_per_valid_keypoint():
    s = random_keypoint_scene(5)
    kp, box = s["keypoints"][:1], s["boxes"][:1]
    targets, valid = keypoints_to_heatmap(kp, box, 56)
    axes = draw_keypoint_target(s["image"], box[0], kp[0], targets[0], valid[0], 56)
    grid = axes[1].images[0].get_array()
    lit = np.argwhere((np.asarray(grid) < 1).any(-1))
    assert sorted(map(tuple, lit)) == sorted({(int(t) // 56, int(t) % 56) for t in targets[0][valid[0]]})
    with pytest.raises(ValueError, match="one entry per keypoint"):
        draw_keypoint_target(s["image"], box[0], kp[0], targets[0][:3], valid[0], 56)
    plt.close("all")
