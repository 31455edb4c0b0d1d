import numba
import pytest
from threadpoolctl import threadpool_info

from mrcnn_np.threads import get_num_threads, set_num_threads


def test_set_num_threads_sets_numba_and_blas():
    before = get_num_threads()
    try:
        set_num_threads(1)
        assert numba.get_num_threads() == 1
        assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas")
    finally:
        set_num_threads(before)


def test_bad_thread_count():
    with pytest.raises(ValueError, match="threads"):
        set_num_threads(0)
