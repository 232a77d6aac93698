import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def single_thread():
    # The suite runs tiny convs on a small shared CPU: one thread avoids waiting on busy
    # sibling threads (measured 3-5x faster than two under load).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
