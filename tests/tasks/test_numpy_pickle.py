import gzip
import io
import os
import pickle

import numpy as np
import pytest

from eddies.core import DataError
from eddies.tasks.numpy_pickle import load_numpy_pickle


def test_loads_arrays_from_gzip_and_plain(tmp_path):
    data = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2])), [np.zeros(2)])
    for opener, name in ((gzip.open, "a.pkl.gz"), (open, "a.pkl")):
        with opener(tmp_path / name, "wb") as f:
            pickle.dump(data, f, protocol=2)
        loaded = load_numpy_pickle(tmp_path / name)
        assert loaded[0][0].dtype == np.float32
        np.testing.assert_array_equal(loaded[0][0], data[0][0])
        np.testing.assert_array_equal(loaded[1][0], data[1][0])


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_refuses_any_other_global(tmp_path):
    blob = pickle.dumps((np.zeros(2), Exploit()))
    with pytest.raises(DataError, match="refused to unpickle global .*system"):
        load_numpy_pickle(io.BytesIO(blob))


def test_garbage_is_a_data_error(tmp_path):
    path = tmp_path / "junk.pkl.gz"
    path.write_bytes(gzip.compress(b"not a pickle"))
    with pytest.raises(DataError, match="junk.pkl.gz"):
        load_numpy_pickle(path)
