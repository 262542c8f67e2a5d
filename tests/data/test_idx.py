import gzip

import numpy as np
import pytest

from fcnn.data.errors import DataError
from fcnn.data.idx import parse_idx, read_idx, write_idx


def test_round_trip_raw_and_gzip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(write_idx(arr))
    (tmp_path / "b.gz").write_bytes(gzip.compress(write_idx(arr)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), arr)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "bad magic number"),
        (b"PK\x03\x04", "bad magic number"),
        (b"", "bad magic number"),
        (b"\x00\x00\x08\x02\x00\x00", "truncated IDX header"),
        (write_idx(np.zeros((3, 2), np.uint8))[:-1], "truncated or padded"),
    ],
)
def test_malformed_files_name_the_file(data, message):
    with pytest.raises(DataError, match=message) as info:
        parse_idx(data, "some/file-idx3-ubyte")
    assert "some/file-idx3-ubyte" in str(info.value)


def test_corrupt_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(write_idx(np.zeros(10, np.uint8)))[:-8])
    with pytest.raises(DataError, match="x.gz"):
        read_idx(path)
