"""The symptom pictures: the data of every bug on the clean code, and one bug's planted row."""

import matplotlib
import numpy as np
import pytest

from mrcnn_np.bughunt import BUGS, symptom_figure
from mrcnn_np.bughunt.figure import planted_symptom_data
from mrcnn_np.bughunt.symptoms import SYMPTOMS, symptom_data

matplotlib.use("Agg")


def test_every_bug_has_symptom_panels():
    assert set(SYMPTOMS) == {b.name for b in BUGS}
    for b in BUGS:
        panels = symptom_data(b.name)
        assert panels and all(isinstance(t, str) and np.ndim(a) in (1, 2) for t, a in panels), b.name
        assert all(np.isfinite(a).all() for _, a in panels), b.name


def test_clean_values_by_hand():
    (_, counts), = symptom_data("sampler-ignores-positive-fraction")
    assert counts == [128, 128]
    (_, kept), = symptom_data("nms-threshold-inclusive")
    assert kept == [1, 1]
    (_, diff), = symptom_data("frozen-bn-batch-statistics")
    assert np.abs(diff).max() == 0


def test_planted_row_comes_from_the_buggy_code():
    (_, counts), = planted_symptom_data("sampler-ignores-positive-fraction")
    assert counts == [256, 0]   # the fraction ignored: all positives


def test_symptom_figure_has_a_clean_and_a_planted_row():
    import matplotlib.pyplot as plt

    fig = symptom_figure("nms-threshold-inclusive")
    axes = fig.get_axes()
    assert len(axes) == 2 and "clean code" in axes[0].get_title() and "with nms-threshold" in axes[1].get_title()
    assert [p.get_height() for p in axes[1].patches] == [1, 0]
    plt.close(fig)
    with pytest.raises(ValueError, match="no bug named"):
        symptom_figure("nope")
