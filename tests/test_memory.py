"""mrcnn_np.memory: freed arrays stay in the process, so the next step's arrays fault no pages."""

import platform
import resource

import numpy as np
import pytest

from mrcnn_np.memory import keep_freed_memory


def _faults_of_second_allocation(nbytes):
    np.ones(nbytes // 8)                       # allocate, write, free
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(nbytes // 8)                       # the same size again
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc",
                    reason="mallopt is glibc's")
def test_freed_40_mb_array_is_reused_without_page_faults():
    # 40 MiB is above glibc's largest dynamic mmap threshold (32 MiB): by default every such
    # array is a fresh mmap whose pages fault when written (measured here: 532 faults with
    # transparent huge pages, ~10,000 without); kept in the heap, it faults none
    assert keep_freed_memory() is True
    assert _faults_of_second_allocation(40 * 2**20) < 64


def test_negative_threshold_is_refused():
    with pytest.raises(ValueError, match="mmap_threshold=-1"):
        keep_freed_memory(-1, 0)
