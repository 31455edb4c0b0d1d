"""Studies: many trainings, one question each, on one runner.

    runner      Study, Variant, run_study: variants x seeds -> jobs -> run folders -> mean ± std -> report
    executors   in this process, a local pool of spawned processes, or a Dask cluster
    report      mean ± std, the git commit, number formats, the JSON + markdown files
    registry    every study by name
    demo        python -m mrcnn_np demo (make demo)
    ablation    the ablation tables' common part (recipe, model config, scoring, markdown);
                ablation_roi, ablation_mask_loss, ablation_mask_head, ablation_backbone,
                ablation_mask_resolution: the tables (paper Table 2)
    keypoints_table4   keypoint-only vs keypoint & mask (paper Table 4)
    analyses    re-scoring finished runs: softmax readout, oracle mask IoU
    cli         the demo / ablate / keypoints subcommands (the same flags for every study)

Importing this package imports no numerics (the command line parses first).
"""
