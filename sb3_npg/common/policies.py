"""
The flat actor-critic policies of the algorithms: SB3's, with a cheaper rollout step.

:meth:`forward` is the call SB3's ``collect_rollouts`` makes at every environment step; on the small networks of
the MuJoCo entries its Python overhead, not its arithmetic, is most of a rollout's cost beyond the simulator.

- Every ``torch.distributions`` object checks its arguments when it is built (finite mean, positive standard
  deviation, probabilities that sum to 1), unless told not to; on a small network those checks cost 10-40% of the
  forward pass. The policies here turn the checks off for the duration of :meth:`forward` only: the previous
  setting is restored when it returns, so nothing outside that call (a callback, ``predict``, the update, the
  user's own code) sees a change. The checks guard nothing there: the parameters are finite (a non-finite update
  is never applied) and ``exp(log_std)`` is positive; a non-finite observation gives non-finite actions and
  rewards, and the update that would learn from them is skipped and logged.
- For SB3's diagonal Gaussian (a ``Box`` action without gSDE) the step draws the action and computes its log
  probability from the mean and ``log_std`` directly, with the very operations and random draws of
  ``torch.distributions.Normal`` (``rsample``, ``log_prob``) and SB3's sum over the action's dimensions, without
  building the two distribution objects. The actions, values and log probabilities are the same, bit for bit, as
  SB3's :meth:`~stable_baselines3.common.policies.ActorCriticPolicy.forward` under the same random state
  (``tests/test_policies.py`` checks it). A subclass that overrides how the distribution is built
  (``_get_action_dist_from_latent``, on the class or the instance) or another distribution takes SB3's own
  path.
"""

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch as th
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy

_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


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


def is_sb3s(policy: ActorCriticPolicy, name: str) -> bool:
    """
    Whether the policy's method ``name`` is SB3's ``ActorCriticPolicy``'s own, not replaced on a subclass or on the
    instance.

    :param policy: an SB3 actor-critic policy
    :param name: the method's name
    """
    return getattr(getattr(policy, name), "__func__", None) is getattr(ActorCriticPolicy, name)


class GaussianRolloutStep(UncheckedRolloutStep, ActorCriticPolicy):
    """
    Base of the flat policies: the rollout step without ``torch.distributions``' checks, and without building a
    distribution at all for SB3's diagonal Gaussian (same results as SB3's :meth:`forward`, see the module's notes).
    """

    def _plain_gaussian(self) -> bool:
        """Whether the action distribution is SB3's diagonal Gaussian, built the way SB3 builds it."""
        # A method replaced on the class or on the instance is not SB3's: its own path then runs it
        return type(self.action_dist) is DiagGaussianDistribution and is_sb3s(self, "_get_action_dist_from_latent")

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        The rollout step: actions, values and the actions' log probabilities, as SB3's ``forward``.

        :param obs: the observations
        :param deterministic: take the mean action instead of sampling
        :return: the actions, the values and the log probabilities of the actions
        """
        if not self._plain_gaussian():
            return super().forward(obs, deterministic)
        features = self.extract_features(obs)
        if self.share_features_extractor:
            latent_pi, latent_vf = self.mlp_extractor(features)
        else:
            latent_pi = self.mlp_extractor.forward_actor(features[0])
            latent_vf = self.mlp_extractor.forward_critic(features[1])
        values = self.value_net(latent_vf)
        mean = self.action_net(latent_pi)
        # SB3 expands the standard deviation to the batch (ones_like(mean) * exp(log_std)); broadcasting the one row
        # gives the same numbers element by element, with fewer operations
        std = self.log_std.exp()
        if deterministic:
            actions = mean
        else:  # Normal.rsample: loc + eps * scale, eps drawn as torch.distributions draws it (the batch's shape)
            actions = mean + th.empty(mean.shape, dtype=mean.dtype, device=mean.device).normal_() * std
        # Normal.log_prob, summed over the action's dimensions as SB3's sum_independent_dims does
        log_prob = -((actions - mean) ** 2) / (2 * std**2) - std.log() - _LOG_SQRT_2PI
        log_prob = log_prob.sum(dim=1) if log_prob.dim() > 1 else log_prob.sum()
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob  # type: ignore[misc]


class MlpPolicy(GaussianRolloutStep):
    """SB3's ``MlpPolicy`` (``ActorCriticPolicy``), same arguments, with the cheaper rollout step."""


class CnnPolicy(GaussianRolloutStep, ActorCriticCnnPolicy):
    """SB3's ``CnnPolicy`` (``ActorCriticCnnPolicy``), same arguments, with the cheaper rollout step."""


class MultiInputPolicy(GaussianRolloutStep, MultiInputActorCriticPolicy):
    """SB3's ``MultiInputPolicy``, with the same arguments, with the cheaper rollout step."""


__all__ = [
    "CnnPolicy",
    "GaussianRolloutStep",
    "MlpPolicy",
    "MultiInputPolicy",
    "UncheckedRolloutStep",
    "distribution_checks",
    "is_sb3s",
]
