"""Uniform noise that is a pure function of (seed, stream, epoch, sample index, element).

Dequantisation noise drawn this way is reproducible without any random-generator state: a
resumed run, another number of data-loader workers or processes, or another batch order give
every image exactly the same noise in the same epoch. Each value hashes its coordinates with
SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014)
and keeps the top 53 bits as a float64 in [0, 1)::

    >>> import numpy as np
    >>> a = counter_uniform(seed=0, stream=1, epoch=2, indices=np.array([5, 7]), size=3)
    >>> b = counter_uniform(seed=0, stream=1, epoch=2, indices=np.array([7]), size=3)
    >>> a.shape, bool((a[1] == b[0]).all()), bool(((0 <= a) & (a < 1)).all())
    ((2, 3), True, True)
"""

from __future__ import annotations

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (arithmetic wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _hash(key: np.ndarray, value: np.ndarray | int) -> np.ndarray:
    return _mix(key ^ (np.asarray(value, dtype=np.uint64) + _GAMMA))


def counter_uniform(seed: int, stream: int, epoch: int, indices: np.ndarray, size: int) -> np.ndarray:
    """Uniform [0, 1) float64 array of shape (len(indices), size), one row per sample index."""
    key = _hash(np.zeros(1, dtype=np.uint64), seed)
    key = _hash(_hash(key, stream), epoch)
    rows = _hash(key, np.asarray(indices, dtype=np.uint64))[:, None]
    counters = rows + (np.arange(1, size + 1, dtype=np.uint64) * _GAMMA)[None, :]
    return (_mix(counters) >> np.uint64(11)).astype(np.float64) * 2.0**-53
