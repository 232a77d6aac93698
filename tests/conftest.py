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


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny generator file and an anchors folder for it (tests/sample_world.py), one per test
    module; test files that need another world define their own `world`."""
    from sample_world import make_world

    return make_world(tmp_path_factory.mktemp("world"))
