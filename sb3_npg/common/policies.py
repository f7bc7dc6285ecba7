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
- On that path SB3's ``MlpExtractor`` and the linear heads run through :func:`run_plain`: a ``Linear`` layer or an
  ``nn.Sequential`` of ``Linear``, ``Tanh``, ``ReLU`` and ``Identity`` layers runs its layers' own kernels
  (``F.linear``, ``th.tanh``, ``F.relu``) directly instead of through ``nn.Module.__call__``, whose bookkeeping
  costs more than the arithmetic at a rollout's batch of a few rows. The operations are those of the layers'
  ``forward``, so the numbers are the same; a module of any other kind, one with a replaced ``forward``, or any
  hook (on the module, a layer, or registered globally) sends the call through ``nn.Module.__call__`` as usual.
"""

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import MlpExtractor
from torch import nn
from torch.nn.modules import module as torch_module

_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))

# The layers run_plain runs by their kernels, with the forward each kernel stands for: a layer class whose forward has
# been replaced since (by a user, on the class) is no longer plain
_PLAIN_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Tanh, nn.ReLU, nn.Identity)
_PLAIN_FORWARDS: dict[type[nn.Module], Callable[..., Any]] = {layer: layer.forward for layer in _PLAIN_LAYERS}
# torch's registries of hooks on every module; one that cannot be found counts as holding a hook
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks", "_global_backward_pre_hooks")
# The methods of SB3's MlpExtractor that forward would call: replaced on the instance, the extractor is not plain
_EXTRACTOR_METHODS = ("forward", "forward_actor", "forward_critic")


def _hooked(module: nn.Module) -> bool:
    """Whether calling the module would run a hook of its own."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks or module._backward_pre_hooks)


def _global_hooks() -> bool:
    """Whether a hook registered for every module (or a tracer) would see the calls."""
    return any(getattr(torch_module, name, True) for name in _GLOBAL_HOOKS) or th._C._get_tracing_state() is not None


def _plain_layers(net: nn.Module) -> tuple[nn.Module, ...] | None:
    """The layers ``net`` runs, in order, if each is a plain layer without hooks; None otherwise."""
    if type(net) is nn.Sequential:
        if _hooked(net) or "forward" in vars(net):
            return None
        layers = tuple(net)
    else:
        layers = (net,)
    for layer in layers:
        if _PLAIN_FORWARDS.get(type(layer)) is not type(layer).forward or _hooked(layer) or "forward" in vars(layer):
            return None
    return layers


def run_plain(net: nn.Module, x: th.Tensor) -> th.Tensor:
    """
    ``net(x)``, with the kernels of a plain ``Linear`` layer or ``nn.Sequential`` called directly (see the module's
    notes): the same operations, so the same result, without ``nn.Module.__call__``'s overhead.

    :param net: the module
    :param x: its input
    :return: its output
    """
    layers = _plain_layers(net)
    if layers is None or _global_hooks():
        return net(x)
    for layer in layers:
        if isinstance(layer, nn.Linear):
            x = F.linear(x, layer.weight, layer.bias)
        elif isinstance(layer, nn.Tanh):
            x = th.tanh(x)
        elif isinstance(layer, nn.ReLU):
            x = F.relu(x, inplace=layer.inplace)
    return x


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

    def _latents(self, features: th.Tensor | tuple[th.Tensor, th.Tensor]) -> tuple[th.Tensor, th.Tensor]:
        """The actor's and the critic's latent features, as SB3's ``forward`` computes them."""
        extractor = self.mlp_extractor
        plain = (
            type(extractor) is MlpExtractor and not _hooked(extractor) and not set(_EXTRACTOR_METHODS) & vars(extractor).keys()
        )
        if plain and not _global_hooks():
            # SB3's MlpExtractor: forward_actor is policy_net, forward_critic is value_net
            pi_features, vf_features = (features, features) if self.share_features_extractor else features
            return run_plain(extractor.policy_net, pi_features), run_plain(extractor.value_net, vf_features)  # type: ignore[arg-type]
        if self.share_features_extractor:
            return extractor(features)
        return extractor.forward_actor(features[0]), extractor.forward_critic(features[1])

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        The rollout step: actions, values and the actions' log probabilities, as SB3's ``forward``.

        :param obs: the observations
        :param deterministic: take the mean action instead of sampling
        :return: the actions, the values and the log probabilities of the actions
        """
        if not self._plain_gaussian():
            return super().forward(obs, deterministic)
        latent_pi, latent_vf = self._latents(self.extract_features(obs))
        values = run_plain(self.value_net, latent_vf)
        mean = run_plain(self.action_net, latent_pi)
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
    "run_plain",
]
