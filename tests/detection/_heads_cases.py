"""Random but realistic inputs for the RPN / box-head target and post-processing functions,
and the same computation done by torchvision (used by the golden-fixture script and by the
live `reference` tests; importing torch happens only inside ``torchvision_outputs``)."""

import numpy as np

from mrcnn_np.detection.anchors import AnchorGenerator

IMAGE_SIZES = [(60, 90), (64, 70)]          # unpadded sizes of a 2-image batch
PADDED = (64, 96)
FEATURE_SIZES = [(16, 24), (8, 12), (4, 6)]  # strides 4, 8, 16
NUM_CLASSES = 4                              # incl. background


def make_case(seed):
    rng = np.random.default_rng(seed)
    gen = AnchorGenerator(sizes=((16,), (32,), (64,)), aspect_ratios=((0.5, 1.0, 2.0),) * 3)
    anchors = gen(PADDED, FEATURE_SIZES).astype(np.float32)
    per_level = [h * w * 3 for h, w in FEATURE_SIZES]
    a = len(anchors)
    n = len(IMAGE_SIZES)
    gt_boxes, gt_labels = [], []
    for (h, w) in IMAGE_SIZES:
        g = int(rng.integers(1, 5))
        xy = rng.uniform(0, [w - 12, h - 12], size=(g, 2))
        wh = rng.uniform(6, 40, size=(g, 2))
        b = np.concatenate([xy, np.minimum(xy + wh, [w, h])], axis=1).astype(np.float32)
        gt_boxes.append(b)
        gt_labels.append(rng.integers(1, NUM_CLASSES, size=g).astype(np.int64))
    objectness = rng.normal(0, 2, size=(n, a)).astype(np.float32)
    deltas = rng.normal(0, 0.3, size=(n, a, 4)).astype(np.float32)
    # proposals for the box head: jittered GT plus random boxes (fewer than 512 per image,
    # so the sampler keeps every candidate and the comparison is deterministic)
    proposals = []
    for b, (h, w) in zip(gt_boxes, IMAGE_SIZES):
        jit = np.repeat(b, 8, axis=0) + rng.normal(0, 3, size=(8 * len(b), 4)).astype(np.float32)
        xy = rng.uniform(0, [w - 5, h - 5], size=(40, 2))
        rnd = np.concatenate([xy, xy + rng.uniform(4, 30, size=(40, 2))], axis=1)
        p = np.concatenate([jit, rnd]).astype(np.float32)
        p[:, 2:] = np.maximum(p[:, 2:], p[:, :2] + 1)
        proposals.append(p)
    r = sum(len(p) for p in proposals)
    class_logits = rng.normal(0, 2, size=(r, NUM_CLASSES)).astype(np.float32)
    box_regression = rng.normal(0, 0.5, size=(r, 4 * NUM_CLASSES)).astype(np.float32)
    return dict(anchors=anchors, per_level=per_level, gt_boxes=gt_boxes, gt_labels=gt_labels,
                objectness=objectness, deltas=deltas, proposals=proposals,
                class_logits=class_logits, box_regression=box_regression)


def torchvision_outputs(case, pre_nms_top_n=300, post_nms_top_n=100):
    import torch
    from torchvision.models.detection.roi_heads import RoIHeads
    from torchvision.models.detection.rpn import RegionProposalNetwork

    t = torch.from_numpy
    rpn = RegionProposalNetwork(None, None, 0.7, 0.3, 256, 0.5,
                                dict(training=pre_nms_top_n, testing=pre_nms_top_n),
                                dict(training=post_nms_top_n, testing=post_nms_top_n), 0.7)
    rpn.eval()
    anchors = t(case["anchors"])
    n = len(IMAGE_SIZES)
    targets = [{"boxes": t(b), "labels": t(l)} for b, l in zip(case["gt_boxes"], case["gt_labels"])]
    labels, matched = rpn.assign_targets_to_anchors([anchors] * n, targets)
    proposals = rpn.box_coder.decode(t(case["deltas"]).reshape(-1, 4), [anchors] * n).view(n, -1, 4)
    boxes, scores = rpn.filter_proposals(proposals, t(case["objectness"]).reshape(-1, 1),
                                         IMAGE_SIZES, case["per_level"])
    heads = RoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, None, 0.05, 0.5, 100)
    heads.train()
    s_props, s_matched, s_labels, s_targets = heads.select_training_samples(
        [t(p) for p in case["proposals"]], targets)
    heads.eval()
    d_boxes, d_scores, d_labels = heads.postprocess_detections(
        t(case["class_logits"]), t(case["box_regression"]),
        [t(p) for p in case["proposals"]], IMAGE_SIZES)
    npy = lambda xs: [x.numpy() for x in xs]  # noqa: E731
    return dict(rpn_labels=npy(labels), rpn_matched=npy(matched), prop_boxes=npy(boxes),
                prop_scores=npy(scores), s_props=npy(s_props), s_matched=npy(s_matched),
                s_labels=npy(s_labels), s_targets=npy(s_targets), det_boxes=npy(d_boxes),
                det_scores=npy(d_scores), det_labels=npy(d_labels))
