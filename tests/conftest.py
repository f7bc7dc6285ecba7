"""
Fixtures shared by the tests: one torch thread per test, the devices of the no-synchronisation tests, a conjugate-
gradient solve that fails on any host synchronisation, a logger that records every value a model logs, and a working
directory outside the checkout for the tests that build MuJoCo environments.
"""

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger

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
def outside_checkout(tmp_path, monkeypatch) -> None:
    """
    Run the test in its temporary folder: MuJoCo writes its warnings to ``MUJOCO_LOG.TXT`` in the working directory,
    and a file that lands in the checkout while another worker runs ``tests/test_examples.py`` fails that test.
    """
    monkeypatch.chdir(tmp_path)


CUDA = pytest.param(
    "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA device")]
)


@pytest.fixture(params=["cpu", CUDA])
def solve_device(request) -> str:
    """The device of a no-synchronisation test: the CPU, and CUDA where there is one."""
    return request.param


@pytest.fixture
def solve_without_host_sync(monkeypatch) -> Callable[..., ConjugateGradientResult]:
    """
    Conjugate gradient run with every host-synchronising tensor method made to raise.

    On CUDA, CUDA's own sync check (``torch.cuda.set_sync_debug_mode("error")``) is on as well.
    """

    def solve(fvp, gradient: th.Tensor, max_iter: int = 10) -> ConjugateGradientResult:
        on_cuda = gradient.device.type == "cuda"
        if on_cuda:
            th.cuda.synchronize()
        previous = th.cuda.get_sync_debug_mode() if on_cuda else 0
        with monkeypatch.context() as patch:
            for name in HOST_SYNC_METHODS:
                patch.setattr(th.Tensor, name, raise_host_sync)
            if on_cuda:
                th.cuda.set_sync_debug_mode("error")
            try:
                return conjugate_gradient(fvp, gradient, max_iter=max_iter)
            finally:
                if on_cuda:
                    th.cuda.set_sync_debug_mode(previous)

    return solve


class RecordingLogger(Logger):
    """
    SB3's logger (with no output), keeping every value recorded, per key and in order, and the values of each dump.

    ``series(key)`` holds one value per ``record`` call, so the values of the last update are there without a final
    dump (SB3's ``learn`` dumps before each update, never after the last); ``dumps`` holds one dict per ``dump``.
    """

    def __init__(self) -> None:
        super().__init__(folder=None, output_formats=[])
        self.values: dict[str, list[Any]] = defaultdict(list)
        self.dumps: list[dict[str, Any]] = []

    def record(self, key: str, value: Any, exclude: str | tuple[str, ...] | None = None) -> None:
        self.values[key].append(value)
        super().record(key, value, exclude)

    def dump(self, step: int = 0) -> None:
        self.dumps.append(dict(self.name_to_value))
        super().dump(step)

    def series(self, key: str) -> list[float]:
        """Every value recorded under ``key``, as floats."""
        return [float(value) for value in self.values.get(key, [])]


@pytest.fixture
def record_logger() -> Callable[[BaseAlgorithm], RecordingLogger]:
    """
    Give a model a :class:`RecordingLogger`: ``log = record_logger(model)``, then ``model.learn(...)`` and
    ``log.series("train/kl")`` (``log.dumps`` for what each dump wrote).
    """

    def attach(model: BaseAlgorithm) -> RecordingLogger:
        logger = RecordingLogger()
        model.set_logger(logger)
        return logger

    return attach
