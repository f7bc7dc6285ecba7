"""
The flat actor-critic policies of the algorithms: SB3's, with a rollout step that skips ``torch.distributions``' checks.

Every ``torch.distributions`` object checks its arguments when it is built (finite mean, positive standard
deviation, probabilities that sum to 1), unless told not to. SB3 builds one per rollout step, and on a small
network those checks cost 10-40% of the policy's forward pass. The policies here turn the checks off for the
duration of :meth:`forward` only, the call SB3's ``collect_rollouts`` makes at every step: the previous setting is
restored when it returns, so nothing outside that call (a callback, ``predict``, the update, the user's own code)
sees a change. The checks guard nothing there: the parameters are finite (a non-finite update is never applied)
and ``exp(log_std)`` is positive; a non-finite observation gives non-finite actions and rewards, and the update
that would learn from them is skipped and logged.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import torch as th
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy


@contextlib.contextmanager
def distribution_checks(enabled: bool) -> Iterator[None]:
    """
    Set ``torch.distributions``' default argument checking for the duration of the block, then restore it.

    :param enabled: whether distributions built inside the block check their arguments
    """
    previous = th.distributions.Distribution._validate_args
    th.distributions.Distribution.set_default_validate_args(enabled)
    try:
        yield
    finally:
        th.distributions.Distribution.set_default_validate_args(previous)


class UncheckedRolloutStep:
    """Mixin for an SB3 policy: its :meth:`forward` (the rollout step) builds distributions without argument checks."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with distribution_checks(False):
            return super().forward(*args, **kwargs)  # type: ignore[misc]


class MlpPolicy(UncheckedRolloutStep, ActorCriticPolicy):
    """SB3's ``MlpPolicy`` (``ActorCriticPolicy``), same arguments; its rollout step skips the distribution's checks."""


class CnnPolicy(UncheckedRolloutStep, ActorCriticCnnPolicy):
    """SB3's ``CnnPolicy`` (``ActorCriticCnnPolicy``), same arguments; its rollout step skips the distribution's checks."""


class MultiInputPolicy(UncheckedRolloutStep, MultiInputActorCriticPolicy):
    """SB3's ``MultiInputPolicy``, with the same arguments; its rollout step skips the distribution's checks."""


__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "UncheckedRolloutStep", "distribution_checks"]
