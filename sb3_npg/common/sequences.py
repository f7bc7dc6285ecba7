"""
Means over padded batches of sequences, as sb3-contrib's recurrent rollout buffers return them.

A recurrent buffer cuts the rollout into sequences (at episode starts, between environments and at
the batch's random split), pads them to one length and flattens them to ``(n_seq * max_len, ...)``,
with a ``mask`` that is 1 on real steps and 0 on padding. Every mean over such a batch must skip the
padding; the functions here take optional per-sample weights (the mask) and reduce to the plain mean
without them. :func:`unroll_lstm` runs an LSTM over such a batch.
"""

import itertools
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


def unroll_lstm(
    features: th.Tensor,
    lstm_states: tuple[th.Tensor, th.Tensor],
    episode_starts: th.Tensor,
    lstm: th.nn.LSTM,
) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
    """
    Run an LSTM over a batch of padded sequences, resetting its state at episode starts.

    It computes what sb3-contrib's ``RecurrentActorCriticPolicy._process_sequence`` computes, with the same
    arguments and layout, but calls the LSTM once per stretch of time steps in which no sequence resets,
    instead of once per time step. A recurrent rollout buffer cuts sequences at episode starts, so a
    training batch resets only at its first step and the whole batch is one call. Finding the stretches
    reads ``episode_starts`` on the host once.

    :param features: ``(n_seq * max_len, input_size)``, sequence after sequence
    :param lstm_states: hidden and cell states before each sequence's first step, each ``(num_layers, n_seq, hidden)``
    :param episode_starts: ``(n_seq * max_len,)``, 1 where the state is reset to zero before the step
    :param lstm: the LSTM (not batch-first)
    :return: the outputs ``(n_seq * max_len, hidden)`` and the states after the last step
    """
    n_seq = lstm_states[0].shape[1]
    sequence = features.reshape((n_seq, -1, lstm.input_size)).swapaxes(0, 1)  # (max_len, n_seq, input_size)
    starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)  # (max_len, n_seq)
    later_resets = th.nonzero((starts[1:] != 0).any(dim=1)).flatten() + 1
    bounds = [0, *later_resets.tolist(), starts.shape[0]]
    hidden, cell = lstm_states
    outputs = []
    for begin, end in itertools.pairwise(bounds):
        keep = (1.0 - starts[begin]).view(1, n_seq, 1)
        output, (hidden, cell) = lstm(sequence[begin:end], (keep * hidden, keep * cell))
        outputs.append(output)
    output = outputs[0] if len(outputs) == 1 else th.cat(outputs)
    return th.flatten(output.transpose(0, 1), start_dim=0, end_dim=1), (hidden, cell)
