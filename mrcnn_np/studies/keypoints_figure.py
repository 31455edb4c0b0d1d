"""The keypoints study's figure: ground truth and each variant's predicted skeletons on validation images."""

from __future__ import annotations

from pathlib import Path


def save_figure(results, labels, data_dir, path, n: int = 4, score_shown: float = 0.5) -> list:
    """Ground truth (top row) and, per variant in ``labels``, its first finished seed's predictions
    (score >= ``score_shown``) on the first ``n`` validation images; returns the run folders drawn."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")       # a file, no window
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from mrcnn_np.engine import load_weights, to_model_image  # noqa: PLC0415
    from mrcnn_np.engine.data import shapes_split  # noqa: PLC0415
    from mrcnn_np.studies.runner import quiet  # noqa: PLC0415
    from mrcnn_np.viz.keypoints import draw_keypoints  # noqa: PLC0415

    with quiet():
        val_set = shapes_split(data_dir, "val")
    n = min(n, len(val_set))
    samples = [val_set[i] for i in range(n)]
    rows = [("ground truth", None)]
    for label in labels:
        run = next((r for r in sorted(results, key=lambda r: r["seed"]) if r["variant"] == label and r["metrics"]),
                   None)
        rows.append((label, run))
    fig, axes = plt.subplots(len(rows), n, figsize=(2.7 * n, 2.9 * len(rows)), squeeze=False)
    drawn = []
    for r, (label, run) in enumerate(rows):
        if r == 0:
            for j, s in enumerate(samples):
                draw_keypoints(s["image"], s["keypoints"], val_set.skeleton, s["boxes"], s["masks"], ax=axes[0, j],
                               title=f"image {s['image_id']}: ground truth ({len(s['boxes'])})")
            continue
        if run is None:
            for j in range(n):
                axes[r, j].set_axis_off()
            axes[r, 0].set_title(f"{label}: no finished run", fontsize=9)
            continue
        model, _, _ = load_weights(run["run_dir"])
        drawn.append(run["run_dir"])
        dets = model.predict([to_model_image(s["image"]) for s in samples])
        for j, (s, d) in enumerate(zip(samples, dets)):
            keep = d["scores"] >= score_shown
            draw_keypoints(s["image"], d["keypoints"][keep], val_set.skeleton, d["boxes"][keep],
                           d["masks"][keep] if "masks" in d else None, d["scores"][keep], ax=axes[r, j],
                           visibility=False, title=f"{label}, seed {run['seed']} ({int(keep.sum())})")
    fig.suptitle(f"Stick figures: ground truth (dots visible, rings hidden)\nand predictions (score >= {score_shown})",
                 fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return drawn


__all__ = ["save_figure"]
