"""Helpers shared by the algorithms: parameter ownership, observation sub-sampling, input validation."""

import math
from collections.abc import Callable
from typing import Any

import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import PyTorchObs

try:  # stable-baselines3 >= 2.6
    from stable_baselines3.common.utils import FloatSchedule as _FloatSchedule
except ImportError:  # pragma: no cover - older stable-baselines3
    from stable_baselines3.common.utils import get_schedule_fn as _FloatSchedule  # type: ignore[assignment]


def as_schedule(value: float | Callable[[float], float]) -> Callable[[float], float]:
    """
    Turn a constant or a schedule of the progress remaining (1 -> 0) into a schedule returning floats.

    :param value: a float, or a function of the progress remaining
    :return: the schedule
    """
    return _FloatSchedule(value)


def _distribution_tensors(distribution: Any) -> list[th.Tensor]:
    inner = distribution.distribution
    parts = list(inner) if isinstance(inner, (list, tuple)) else [inner]
    tensors = []
    for part in parts:
        for name in part.arg_constraints:
            # Only read attributes the distribution already holds (reading ``probs`` of a
            # logits-parametrised Categorical would compute it, which is harmless but wasteful).
            value = part.__dict__.get(name)
            if isinstance(value, th.Tensor) and value.requires_grad:
                tensors.append(value)
    return tensors


def actor_parameters(policy: ActorCriticPolicy) -> list[th.nn.Parameter]:
    """
    The parameters that feed the policy's action distribution, found from the autograd graph.

    A sample observation is pushed through ``policy.get_distribution``; a parameter belongs to the
    actor when the distribution's parameters depend on it. This finds a shared features extractor,
    ``log_std`` and any custom layer without relying on parameter names.

    :param policy: an SB3 actor-critic policy
    :return: the actor's parameters, in ``policy.parameters()`` order
    """
    observation = policy.observation_space.sample()
    obs_tensor, _ = policy.obs_to_tensor(observation)
    params = [p for p in policy.parameters() if p.requires_grad]
    with th.enable_grad():
        outputs = _distribution_tensors(policy.get_distribution(obs_tensor))
        if not outputs:
            raise ValueError("the policy's action distribution has no parameters that depend on the policy's weights")
        total = sum(out.sum() for out in outputs)
        assert isinstance(total, th.Tensor)
        grads = th.autograd.grad(total, params, allow_unused=True)
    return [p for p, g in zip(params, grads, strict=True) if g is not None]


def subsample_observations(observations: PyTorchObs, factor: int) -> PyTorchObs:
    """
    Every ``factor``-th observation (Dict observations are sub-sampled key by key).

    :param observations: a batch of observations, a tensor or a dict of tensors
    :param factor: keep one observation in ``factor``
    :return: the sub-sampled batch
    """
    if factor == 1:
        return observations
    if isinstance(observations, dict):
        return {key: value[::factor] for key, value in observations.items()}
    return observations[::factor]


def check_int(name: str, value: Any, minimum: int) -> None:
    """
    Raise ``ValueError`` unless ``value`` is an integer ``>= minimum``.

    :param name: the parameter's name, for the message
    :param value: the value given
    :param minimum: the smallest allowed value
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_float(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """
    Raise ``ValueError`` unless ``value`` is a finite-or-bounded real number in the given interval.

    :param name: the parameter's name, for the message
    :param value: the value given
    :param low: lower bound
    :param high: upper bound
    :param low_inclusive: whether ``low`` itself is allowed
    :param high_inclusive: whether ``high`` itself is allowed
    """
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    allowed = f"{left}{low}, {high}{right}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name} must be a number in {allowed}, got {value!r}")
    below = value < low or (value == low and not low_inclusive)
    above = value > high or (value == high and not high_inclusive)
    if below or above:
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")


def check_float_or_schedule(name: str, value: Any, low: float, low_inclusive: bool = False) -> None:
    """
    Like :func:`check_float` with no upper bound, but also accept a callable schedule (checked at progress 1).

    :param name: the parameter's name, for the message
    :param value: a number or a function of the progress remaining
    :param low: lower bound
    :param low_inclusive: whether ``low`` itself is allowed
    """
    if callable(value):
        check_float(f"{name}(1.0)", value(1.0), low=low, low_inclusive=low_inclusive)
    else:
        check_float(name, value, low=low, low_inclusive=low_inclusive)
