import numpy as np
import pytest

from fcnn import random as fr


def test_same_key_same_numbers_and_split_keys_differ():
    k = fr.key(7)
    a = fr.generator(k).random(5)
    np.testing.assert_array_equal(a, fr.generator(fr.key(7)).random(5))
    k1, k2 = fr.split(k)
    assert not np.array_equal(fr.generator(k1).random(5), fr.generator(k2).random(5))
    assert not np.array_equal(fr.generator(k1).random(5), a)


def test_split_is_deterministic_and_fold_in_depends_on_data():
    np.testing.assert_array_equal(fr.split(fr.key(1), 3), fr.split(fr.key(1), 3))
    assert not np.array_equal(fr.fold_in(fr.key(1), 0), fr.fold_in(fr.key(1), 1))


def test_keys_are_read_only_and_validated():
    k = fr.key(3)
    with pytest.raises(ValueError):
        k[0] = 1
    with pytest.raises(TypeError, match="expected a key"):
        fr.generator(np.zeros(3))
    with pytest.raises(ValueError, match="non-negative"):
        fr.key(-1)
