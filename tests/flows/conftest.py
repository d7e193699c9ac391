"""Tiny float64 tensors run faster in one intra-op thread (thread start-up dominates)."""

import pytest
from eddies.core.testing.checks import single_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield
