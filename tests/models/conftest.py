"""Tiny networks train fastest on one thread; on a shared 2-core machine two OpenMP threads
spin against other processes and were measured up to 50x slower."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
