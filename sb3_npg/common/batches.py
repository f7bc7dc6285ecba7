"""
Rollout batches as the updates read them: means over a batch with optional per-sample weights (the padding mask
of a recurrent batch; without weights, the plain mean), advantage normalisation, actions in the form the action
distribution takes, and observation sub-sampling.

A recurrent buffer (sb3-contrib's) cuts the rollout into sequences, pads them to one length and flattens them to
``(n_seq * max_len, ...)``, with a ``mask`` that is 1 on real steps and 0 on padding; every mean over such a batch
must skip the padding, which the weights do.
"""

import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import PyTorchObs


def weighted_mean(values: th.Tensor, weights: th.Tensor | None = None) -> th.Tensor:
    """
    Mean of ``values`` over its first dimension, each sample counted by its weight.

    :param values: a tensor of shape ``(n,)``
    :param weights: non-negative weights of shape ``(n,)``, not all zero (a 0/1 padding mask); ``None``: the plain mean
    :return: ``sum(w * values) / sum(w)`` (a 0-d tensor)
    """
    if weights is None:
        return values.mean()
    weights = weights.to(values.dtype)
    return (values * weights).sum() / weights.sum()


def normalize_advantages(advantages: th.Tensor, weights: th.Tensor | None = None, eps: float = 1e-8) -> th.Tensor:
    """
    Advantages shifted to mean 0 and scaled to standard deviation 1 over the weighted samples.

    The standard deviation is the unbiased one (``torch.std``); with a 0/1 mask it is that of the
    real steps alone. Padded entries are transformed too (they are masked out later).

    :param advantages: a tensor of shape ``(n,)``
    :param weights: optional 0/1 mask (or weights) of shape ``(n,)``
    :param eps: added to the standard deviation
    :return: the normalized advantages
    """
    if weights is None:
        return (advantages - advantages.mean()) / (advantages.std() + eps)
    weights = weights.to(advantages.dtype)
    mean = weighted_mean(advantages, weights)
    count = weights.sum()
    variance = (weights * (advantages - mean) ** 2).sum() / (count - 1.0).clamp(min=1.0)
    return (advantages - mean) / (variance.sqrt() + eps)


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


def policy_actions(actions: th.Tensor, action_space: spaces.Space) -> th.Tensor:
    """
    Actions from the rollout buffer in the form the policy's distribution takes (Discrete: a flat long tensor).

    :param actions: the buffer's actions, shape ``(n, action_dim)``
    :param action_space: the algorithm's action space
    :return: the actions, ready for ``distribution.log_prob``
    """
    if isinstance(action_space, spaces.Discrete):
        return actions.long().flatten()
    return actions
