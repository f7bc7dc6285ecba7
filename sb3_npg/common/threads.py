"""
The torch threads of an update: ``update_threads`` (a count or ``"auto"``), its check, and the decorator that runs
``train()`` under it and restores the caller's setting.
"""

import contextlib
import functools
import numbers
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm

# update_threads="auto" runs the update of a policy of at most this many parameters, on the CPU, on one torch thread
SMALL_POLICY_PARAMETERS = 100_000


SelfAlgorithm = TypeVar("SelfAlgorithm", bound=BaseAlgorithm)


def check_update_threads(value: Any) -> None:
    """
    Raise ``ValueError`` unless ``value`` is ``"auto"`` or an integer ``>= 0`` (the ``update_threads`` argument).

    :param value: the value given
    """
    if isinstance(value, str) and value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"update_threads must be 'auto' or an integer >= 0 (0: torch's own setting), got {value!r}")


def update_thread_count(update_threads: int | str, policy: th.nn.Module, device: th.device) -> int:
    """
    The number of torch threads an update runs on, ``0`` to leave torch's setting as it is.

    ``"auto"``: one thread for a policy of at most :data:`SMALL_POLICY_PARAMETERS` parameters on the CPU, whose
    operations are too small for threads to share (they wait on each other instead, and on other processes'
    threads on a busy machine); torch's setting for a larger policy or on a GPU.

    :param update_threads: the algorithm's ``update_threads``
    :param policy: the policy
    :param device: the algorithm's device
    :return: the number of threads, or 0
    """
    if update_threads != "auto":
        return int(update_threads)
    if th.device(device).type != "cpu":
        return 0
    return 1 if sum(p.numel() for p in policy.parameters()) <= SMALL_POLICY_PARAMETERS else 0


@contextlib.contextmanager
def torch_threads(n_threads: int) -> Iterator[None]:
    """
    Run the block on ``n_threads`` torch threads (``0``: torch's setting), then restore torch's setting.

    :param n_threads: the number of intra-op threads for the block, or 0
    """
    previous = th.get_num_threads()
    if n_threads == 0 or n_threads == previous:
        yield
        return
    th.set_num_threads(n_threads)
    try:
        yield
    finally:
        th.set_num_threads(previous)


def with_update_threads(train: Callable[[SelfAlgorithm], None]) -> Callable[[SelfAlgorithm], None]:
    """
    Decorate ``train()`` so that it runs on the torch threads of the algorithm's ``update_threads``
    (see :func:`update_thread_count`); torch's setting is restored when it returns, so rollouts, callbacks and
    the rest of the process keep theirs.

    :param train: the algorithm's ``train``
    :return: the decorated ``train``
    """

    @functools.wraps(train)
    def train_on_update_threads(self: SelfAlgorithm) -> None:
        update_threads = getattr(self, "update_threads", "auto")  # models saved before the argument: "auto"
        with torch_threads(update_thread_count(update_threads, self.policy, self.device)):
            train(self)

    return train_on_update_threads
