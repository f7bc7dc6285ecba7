"""
Means over padded batches of sequences, as sb3-contrib's recurrent rollout buffers return them.

A recurrent buffer cuts the rollout into sequences (at episode starts, between environments and at
the batch's random split), pads them to one length and flattens them to ``(n_seq * max_len, ...)``,
with a ``mask`` that is 1 on real steps and 0 on padding. Every mean over such a batch must skip the
padding; the functions here take optional per-sample weights (the mask) and reduce to the plain mean
without them.
"""

from typing import Any, TypeVar

import torch as th

SamplesT = TypeVar("SamplesT", bound=tuple[Any, ...])


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


def subsample_sequences(samples: SamplesT, factor: int) -> SamplesT:
    """
    Every ``factor``-th sequence of a padded batch of sb3-contrib's recurrent rollout buffers.

    The batch holds ``n_seq`` sequences of ``max_len`` steps, flattened sequence by sequence; its
    ``lstm_states`` hold the hidden states at the start of each sequence, of shape ``(n_layers, n_seq, dim)``.
    Whole sequences are kept, so that each keeps its own start state.

    :param samples: a ``RecurrentRolloutBufferSamples`` or ``RecurrentDictRolloutBufferSamples``
    :param factor: keep one sequence in ``factor``
    :return: a batch of the same type with the kept sequences
    """
    if factor == 1:
        return samples
    lstm_states = samples.lstm_states  # type: ignore[attr-defined]
    n_seq = lstm_states.pi[0].shape[1]

    def keep(tensor: th.Tensor) -> th.Tensor:
        sequences = tensor.reshape(n_seq, -1, *tensor.shape[1:])
        return sequences[::factor].reshape(-1, *tensor.shape[1:])

    fields: dict[str, Any] = {}
    for name, value in samples._asdict().items():  # type: ignore[attr-defined]
        if name == "lstm_states":
            fields[name] = type(value)(*(tuple(state[:, ::factor].contiguous() for state in states) for states in value))
        elif isinstance(value, dict):
            fields[name] = {key: keep(tensor) for key, tensor in value.items()}
        else:
            fields[name] = keep(value)
    return type(samples)(**fields)
