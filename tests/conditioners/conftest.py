"""Conditioner tests use tiny tensors: one intra-op thread is much faster for them than two on a
shared machine (thread hand-off dominates). Restored after each test."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
