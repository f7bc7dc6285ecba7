from collections.abc import Callable

import pytest
import torch as th

from sb3_npg.common.conjugate_gradient import ConjugateGradientResult, conjugate_gradient

# The tensor methods that copy a value to the host: on CUDA each one would stall the GPU
HOST_SYNC_METHODS = ("item", "__bool__", "__float__", "__int__", "tolist")


def raise_host_sync(*args, **kwargs):
    raise RuntimeError("host synchronisation inside the conjugate-gradient loop")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The test machines have 2 cores: one torch thread per test process keeps runs fast and repeatable.
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


@pytest.fixture
def solve_without_host_sync(monkeypatch) -> Callable[..., ConjugateGradientResult]:
    """Conjugate gradient run with every host-synchronising tensor method made to raise."""

    def solve(fvp, gradient: th.Tensor, max_iter: int = 10) -> ConjugateGradientResult:
        with monkeypatch.context() as patch:
            for name in HOST_SYNC_METHODS:
                patch.setattr(th.Tensor, name, raise_host_sync)
            return conjugate_gradient(fvp, gradient, max_iter=max_iter)

    return solve


@pytest.fixture
def solve_without_cuda_sync() -> Callable[..., ConjugateGradientResult]:
    """Conjugate gradient run with CUDA's sync debug mode set to raise on any synchronising call."""

    def solve(fvp, gradient: th.Tensor, max_iter: int = 10) -> ConjugateGradientResult:
        th.cuda.synchronize()
        previous = th.cuda.get_sync_debug_mode()
        th.cuda.set_sync_debug_mode("error")
        try:
            result = conjugate_gradient(fvp, gradient, max_iter=max_iter)
        finally:
            th.cuda.set_sync_debug_mode(previous)
        th.cuda.synchronize()
        return result

    return solve
