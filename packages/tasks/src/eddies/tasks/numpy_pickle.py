"""Read pickled numpy arrays with an unpickler that admits only numpy's array types.

Classic data files (such as ``mnist.pkl.gz``) are pickles of tuples of numpy arrays. An unrestricted
unpickler would run whatever callable the file names; :func:`load_numpy_pickle` resolves
only the globals an array pickle needs (``ndarray``, ``dtype``, numpy's array reconstructor
under its numpy 1 and numpy 2 module names, and ``codecs.encode``, a pure text codec with which
protocol-2 pickles written by Python 3 store bytes) and refuses every other one with a
:class:`~eddies.core.DataError` naming the file and the refused global::

    >>> import gzip, io, pickle, numpy as np
    >>> blob = io.BytesIO(); pickle.dump((np.arange(3),), blob)
    >>> load_numpy_pickle(io.BytesIO(blob.getvalue()))[0].tolist()
    [0, 1, 2]

A gzip-compressed file is decompressed with a bound, :data:`MAX_DECOMPRESSED_BYTES` (1 GiB;
``mnist.pkl.gz`` holds 17 MB that decompress to 220 MB), so a "gzip bomb" fails before it
fills memory; a truncated or CRC-corrupt gzip file is one ``DataError`` naming the file.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import pickle
import zlib
from typing import Any, BinaryIO

import numpy as np

from eddies.core import DataError

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own array reconstructor
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("_codecs", "encode"): codecs.encode,
}
MAX_DECOMPRESSED_BYTES = 1 << 30  # the most a gzip source may decompress to (read at each call)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, name: str):
        super().__init__(file, encoding="latin1")  # Python 2 pickles store arrays as byte strings
        self.name = name

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.name}: refused to unpickle global {module}.{name}; only numpy arrays "
                "are admitted (is this the right file?)"
            ) from None


def load_numpy_pickle(source: str | os.PathLike[str] | BinaryIO, max_bytes: int | None = None) -> Any:
    """Unpickle a (gzip-compressed or plain) pickle that holds only numpy arrays and containers.

    A gzip file may decompress to at most ``max_bytes`` (default :data:`MAX_DECOMPRESSED_BYTES`).
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open(name, "rb") as raw:
            data = raw.read()
    else:
        name, data = getattr(source, "name", "<stream>"), source.read()
    if data[:2] == b"\x1f\x8b":
        data = gunzip(data, name, MAX_DECOMPRESSED_BYTES if max_bytes is None else max_bytes)
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), name).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, LookupError, AttributeError) as err:
        raise DataError(f"{name}: not a readable pickle of numpy arrays ({err})") from None


def gunzip(data: bytes, name: str, max_bytes: int) -> bytes:
    """The decompressed ``data`` of gzip file ``name``; DataError if larger than ``max_bytes`` or damaged."""
    chunks, size = [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(1 << 20):  # 1 MiB at a time: never more than the bound in memory
                size += len(chunk)
                if size > max_bytes:
                    raise DataError(f"{name}: decompresses to more than {max_bytes} bytes, the bound for a "
                                    "data source (eddies.tasks.numpy_pickle.MAX_DECOMPRESSED_BYTES)")
                chunks.append(chunk)
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile (CRC, header) is an OSError
        raise DataError(f"{name}: not a readable gzip file, truncated or corrupt ({err})") from None
    return b"".join(chunks)
