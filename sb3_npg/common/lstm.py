"""
LSTM-only helpers over batches of padded sequences (sb3-contrib's recurrent rollout buffers): sub-sampling whole
sequences, one call of the LSTM over a training sequence (:func:`unroll_lstm`), and a recurrent policy's action
distribution and values over such a batch, each sequence from its stored hidden state.
"""

import itertools
from typing import Any, TypeVar

import torch as th
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy

SamplesT = TypeVar("SamplesT", bound=tuple[Any, ...])


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


def sequence_distribution(policy: ActorCriticPolicy, batch: Any) -> Distribution:
    """
    The action distribution of a recurrent policy over a batch of padded sequences.

    The actor's LSTM is unrolled over each sequence from the hidden state stored at its first step,
    and reset wherever ``episode_starts`` is 1, so gradients flow through time within each sequence.

    :param policy: a ``RecurrentActorCriticPolicy``
    :param batch: a sample of sb3-contrib's recurrent rollout buffers (``observations``, ``lstm_states``, ``episode_starts``)
    :return: the distribution at every step of the batch, padding included
    """
    get_distribution: Any = policy.get_distribution  # sb3-contrib's signature: (obs, lstm_states, episode_starts)
    distribution, _ = get_distribution(batch.observations, batch.lstm_states.pi, batch.episode_starts)
    return distribution


def sequence_values(policy: ActorCriticPolicy, batch: Any) -> th.Tensor:
    """
    The critic's values over a batch of padded sequences (its LSTM unrolled like the actor's).

    :param policy: a ``RecurrentActorCriticPolicy``
    :param batch: a sample of sb3-contrib's recurrent rollout buffers
    :return: the values, of shape ``(batch size,)``
    """
    values = policy.predict_values(batch.observations, batch.lstm_states.vf, batch.episode_starts)  # type: ignore[call-arg]
    return values.flatten()
