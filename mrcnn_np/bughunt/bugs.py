"""The bugs of the bug hunt: data only (what to change, where, what a student is told).

Each :class:`Bug` is modelled on a mistake that people really made in a detection code
base; ``source`` names the public issue or discussion it is modelled on. Planting one
applies its :class:`Edit` s -- an exact piece of the package's source replaced by another
-- to a working copy (:mod:`mrcnn_np.bughunt.patch`); production code has no switch for
any of them. ``test`` is the pytest node id (relative to the repository root) that passes
on the clean code and fails with the bug planted; ``bughunt check`` verifies both.

A student is shown ``symptom`` and ``test``; ``hint`` is a nudge for when they are stuck.
Neither names the file. ``reveal`` shows the diff.

Rules for adding a bug: the old text must occur exactly ``count`` times in its file (a
changed file makes ``plant`` refuse, and tests/bughunt/test_bughunt.py fails); prefer the
path the named test runs by default (the numba twins are the CPU default); never plant into
a numba function that is compiled into another module's cached kernel (numba's cache is
keyed on the file of the cached function only, so the caller would keep the old code).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """Replace the exact text ``old`` by ``new`` in ``path`` (relative to the repository root).

    ``old`` must occur exactly ``count`` times in the file; every occurrence is replaced.
    """

    path: str
    old: str
    new: str
    count: int = 1


@dataclass(frozen=True)
class Bug:
    name: str
    source: str
    symptom: str
    test: str
    hint: str
    edits: tuple


BUGS = (
    Bug(
        name="roialign-no-half-offset",
        source="detectron2#3466 (aligned RoIAlign without the half-pixel shift)",
        symptom="With aligned=True, RoIAlign reads every RoI half a feature cell too far down and right: "
                "the pooled features of a box over pixels 0..3 of a ramp are centred on 2.0, not 1.5.",
        test="tests/bughunt/test_catch.py::test_aligned_roi_align_reads_pixel_centres",
        hint="Pixel i covers [i, i+1) and is sampled at its centre i + 0.5. What must happen to a box "
             "corner before it becomes a sampling coordinate when aligned=True?",
        edits=(Edit("mrcnn_np/ops/roi_geometry.py",
                    "    offset = t(0.5) if aligned else t(0)\n",
                    "    offset = t(0)\n", count=2),),
    ),
    Bug(
        name="anchor-ratio-inverted",
        source="torchvision#2171 (aspect ratio read as width / height)",
        symptom="Anchors with aspect ratio 2.0 come out wide instead of tall (height / width = 0.5): "
                "the RPN has no tall anchors for tall objects.",
        test="tests/detection/test_anchors.py::test_cell_anchor_table",
        hint="The package defines aspect ratio = height / width. For ratio r and size s, which side "
             "gets s * sqrt(r)?",
        edits=(Edit("mrcnn_np/detection/anchors.py",
                    "    h_ratios = np.sqrt(ratios)\n    w_ratios = np.float32(1) / h_ratios\n",
                    "    w_ratios = np.sqrt(ratios)\n    h_ratios = np.float32(1) / w_ratios\n"),),
    ),
    Bug(
        name="anchor-offset-ignored",
        source="torchvision#1765 (anchors centred on the top-left corner of the feature cell)",
        symptom="AnchorGenerator(offset=0.5) still centres its anchors on the top-left corner of each "
                "feature cell, half a stride up and left of the cell centre it was asked for.",
        test="tests/detection/test_anchors.py::test_anchor_counts_and_centres",
        hint="Where is the centre of anchor (y, x) computed, and is the offset used on the default path?",
        edits=(Edit("mrcnn_np/detection/anchors.py",
                    "    xs = (np.arange(w) + offset) * sw\n    ys = (np.arange(h) + offset) * sh\n",
                    "    xs = np.arange(w) * sw\n    ys = np.arange(h) * sh\n"),),
    ),
    Bug(
        name="mask-target-not-cropped",
        source="matterport/Mask_RCNN#2779 (mask targets not cut to the proposal box)",
        symptom="The M x M mask target of a RoI shows the whole image's ground-truth mask squeezed into "
                "the square, whatever the RoI: a RoI that lies exactly on the object gets a small blob "
                "instead of a full square of ones.",
        test="tests/bughunt/test_catch.py::test_mask_target_is_cut_to_the_roi",
        hint="The target should be 'the intersection between an RoI and its associated ground-truth "
             "mask' (paper section 3). Which boxes does the resampling read?",
        edits=(Edit("mrcnn_np/ops/masks.py",
                    "    rois = np.concatenate([matched_idxs.astype(np.float32)[:, None],\n"
                    "                           boxes.astype(np.float32)], axis=1)\n",
                    "    whole = np.array([0, 0, masks.shape[3], masks.shape[2]], np.float32)\n"
                    "    rois = np.concatenate([matched_idxs.astype(np.float32)[:, None],\n"
                    "                           np.tile(whole, (len(boxes), 1))], axis=1)\n"),),
    ),
    Bug(
        name="zero-size-box-log0",
        source="matterport/Mask_RCNN#159 (NaN loss: log(0) when encoding zero-size boxes)",
        symptom="A proposal that lies off the image is clipped to a box of zero width and kept; the box "
                "head encodes its regression target against it, divides by a width of 0 and takes "
                "log(w / 0): the box loss turns inf/NaN after a few iterations.",
        test="tests/bughunt/test_catch.py::test_proposals_have_positive_size",
        hint="Clipping to the image can leave boxes of no size at all. Which step of the RPN's "
             "proposal filtering should drop them?",
        edits=(Edit("mrcnn_np/detection/rpn.py",
                    "        keep = remove_small_boxes(boxes, min_size)\n"
                    "        keep = keep[scores[keep] >= score_thresh]\n",
                    "        keep = np.flatnonzero(scores >= score_thresh)\n"),),
    ),
    Bug(
        name="mask-softmax-across-classes",
        source="Mask R-CNN paper, Table 2b (multinomial vs independent masks); a common port mistake",
        symptom="With one mask channel per class, the sigmoid mask loss changes when the logits of OTHER "
                "classes change, and those channels receive gradients: the classes compete for pixels.",
        test="tests/detection/test_heads.py::test_mask_loss_uses_only_the_gt_channel",
        hint="Mask R-CNN decouples masks from classes: only the ground-truth class's channel enters the "
             "loss. Which branch of the mask loss runs for a head with K > 1 channels?",
        edits=(Edit("mrcnn_np/detection/mask_head.py",
                    '    if kind == "sigmoid":\n',
                    '    if kind == "sigmoid" and k == 1:\n'),),
    ),
    Bug(
        name="rpn-low-quality-matches-dropped",
        source="torchvision Matcher allow_low_quality_matches (Faster R-CNN's condition (i))",
        symptom="A small or oddly shaped object whose best anchor has IoU below 0.7 gets no positive "
                "anchor at all in the RPN: the RPN never learns to propose it.",
        test="tests/bughunt/test_catch.py::test_rpn_gives_every_object_a_positive_anchor",
        hint="The RPN's matcher must promote, for each ground-truth box, the anchors that overlap it best, "
             "even below the high threshold. How is the RPN's matcher built?",
        edits=(Edit("mrcnn_np/detection/rpn.py",
                    "        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)\n",
                    "        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh)\n"),),
    ),
    Bug(
        name="sampler-ignores-positive-fraction",
        source="torchvision BalancedPositiveNegativeSampler (positive_fraction); Faster R-CNN section 3.1.3",
        symptom="With many positives the sample is all positives (256 of 256 anchors, or 512 of 512 RoIs) "
                "instead of at most half (RPN) or a quarter (RoI heads): no background is trained on.",
        test="tests/detection/test_sampler.py::test_counts_plenty_of_both",
        hint="num_pos = min(batch_size_per_image * positive_fraction, #positives). Is the fraction applied?",
        edits=(Edit("mrcnn_np/detection/sampler.py",
                    "        num_wanted_pos = int(self.batch_size_per_image * self.positive_fraction)\n",
                    "        num_wanted_pos = self.batch_size_per_image\n"),),
    ),
    Bug(
        name="roipool-rounds-half-to-even",
        source="torchvision roi_pool (C round) vs numpy's np.round; Mask R-CNN section 3 on quantisation",
        symptom="A RoI corner that falls on half a feature cell (x1 = 40 px at stride 16 = 2.5 cells) "
                "starts at cell 2 instead of cell 3 in the default (numba) RoIPool, and the reference "
                "loops disagree with it.",
        test="tests/bughunt/test_catch.py::test_roi_pool_rounds_halves_away_from_zero",
        hint="C's round() sends 2.5 to 3; numpy's np.round sends it to 2 (half to even).",
        edits=(Edit("mrcnn_np/ops/roi_pool.py",
                    "        sw, sh, ew, eh = (np.clip(c_round(rois[:, i] * s), -CORNER_MAX, CORNER_MAX)",
                    "        sw, sh, ew, eh = (np.clip(np.round(rois[:, i] * s), -CORNER_MAX, CORNER_MAX)"),),
    ),
    Bug(
        name="nms-ties-keep-later-box",
        source="torchvision nms (stable sort: equal scores in index order); the np.argsort(scores)[::-1] idiom",
        symptom="Of two identical boxes with the same score NMS keeps the later one (index 1, not 0); "
                "results differ from torchvision whenever scores tie, e.g. for saturated sigmoids.",
        test="tests/ops/test_nms.py::test_nms_golden_ties",
        hint="Reversing an ascending sort also reverses the order of equal elements.",
        edits=(Edit("mrcnn_np/ops/nms.py",
                    '    return (n - 1 - np.argsort(scores[::-1], kind="stable")[::-1]).astype(np.int64)\n',
                    '    return np.argsort(scores, kind="stable")[::-1].astype(np.int64)\n'),),
    ),
    Bug(
        name="nms-threshold-inclusive",
        source="onnx/onnx#7615 (is the NMS iou_threshold compared with > or >=?)",
        symptom="Two boxes whose IoU is exactly the threshold (0.5) suppress each other in the default "
                "(numba) NMS; torchvision keeps both (it suppresses only IoU > threshold).",
        test="tests/ops/test_nms.py::test_nms_threshold_is_strict",
        hint="The comparison is in a numba kernel: strict or not?",
        edits=(Edit("mrcnn_np/ops/nms.py",
                    "            if inter / (iarea + sarea[q] - inter) > iou_threshold:  # compared in float64\n",
                    "            if inter / (iarea + sarea[q] - inter) >= iou_threshold:  # compared in float64\n"),),
    ),
    Bug(
        name="frozen-bn-batch-statistics",
        source="Mask R-CNN section 3.1 ('BN statistics are frozen'); detectron2 FrozenBatchNorm2d",
        symptom="The frozen batch norm of a pretrained body normalises each batch with its own mean and "
                "variance: an image's features change with the other images in the batch, and batches of "
                "2 images make training noisy.",
        test="tests/autodiff/test_norm_losses.py::test_frozen_batch_norm_is_affine_and_only_x_gets_grad",
        hint="Frozen means the statistics are constants stored with the weights. Which mean and variance "
             "does the forward pass use?",
        edits=(Edit("mrcnn_np/autodiff/norm.py",
                    "    scale = (weight * (running_var + eps) ** -0.5).astype(x.dtype)\n"
                    "    shift = (bias - running_mean * scale).astype(x.dtype)\n",
                    "    scale = (weight * (x.var(axis=(0, 2, 3)) + eps) ** -0.5).astype(x.dtype)\n"
                    "    shift = (bias - x.mean(axis=(0, 2, 3)) * scale).astype(x.dtype)\n"),),
    ),
    Bug(
        name="smooth-l1-gradient-missing-beta",
        source="Fast R-CNN eq. 3 with detectron's beta; a hand-written backward that drops a factor",
        symptom="The box-regression loss trains, but its gradient below beta (|d| < 1/9) is beta times too "
                "small, so the gradient check of smooth L1 fails and fine box corrections learn slowly.",
        test="tests/autodiff/test_norm_losses.py::test_loss_gradchecks",
        hint="d/dd (0.5 d^2 / beta) = ?",
        edits=(Edit("mrcnn_np/autodiff/losses.py",
                    "xp.where(xp.abs(d) < beta, d / beta, xp.sign(d))",
                    "xp.where(xp.abs(d) < beta, d, xp.sign(d))"),),
    ),
)

BY_NAME = {b.name: b for b in BUGS}
