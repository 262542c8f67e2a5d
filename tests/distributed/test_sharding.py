import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fcnn.distributed import shard_slice


@given(n=st.integers(0, 300), size=st.integers(1, 9))
def test_shards_are_disjoint_contiguous_and_cover_the_batch(n, size):
    parts = [shard_slice(n, r, size) for r in range(size)]
    covered = np.concatenate([np.arange(n)[p] for p in parts])
    np.testing.assert_array_equal(covered, np.arange(n))  # in order, each index once
    lengths = [p.stop - p.start for p in parts]
    assert max(lengths) - min(lengths) <= 1
    assert lengths == [len(a) for a in np.array_split(np.arange(n), size)]


@pytest.mark.parametrize(("n", "rank", "size"), [(5, 0, 0), (5, 2, 2), (5, -1, 2), (-1, 0, 1)])
def test_bad_shard_requests_are_refused(n, rank, size):
    with pytest.raises(ValueError):
        shard_slice(n, rank, size)
