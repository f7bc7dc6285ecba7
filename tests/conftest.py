import pytest
import torch as th


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The test machines have 2 cores: one torch thread per test process keeps runs fast and repeatable.
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)
