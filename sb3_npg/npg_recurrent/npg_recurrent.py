"""
RecurrentNPG: :class:`~sb3_npg.NPG` (optionally TRPO) on sb3-contrib's LSTM policies.

The class is NPG with the recurrent rollouts of :class:`~sb3_npg.common.recurrent.RecurrentRollouts` and NPG's
``_batch_*`` hooks answered for padded sequences (:mod:`sb3_npg.common.lstm`): the distributions and values unrolled
from each sequence's stored LSTM state, the Fisher's sub-sample made of whole sequences.
Its constructor is NPG's: the same signature (``help()``, IDEs, the documentation), the same defaults.
"""

import copy

import torch as th
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples
from stable_baselines3.common.distributions import Distribution

from sb3_npg.common.lstm import sequence_distribution, sequence_values, subsample_sequences
from sb3_npg.common.on_policy import RECURRENT_PARAMETERS, document_parameters
from sb3_npg.common.recurrent import RecurrentRollouts
from sb3_npg.npg.npg import NPG


@document_parameters(RECURRENT_PARAMETERS)
class RecurrentNPG(RecurrentRollouts, NPG):
    """
    Natural Policy Gradient (NPG, optionally TRPO) with a recurrent (LSTM) policy.

    It takes :class:`~sb3_npg.NPG`'s arguments and policies of sb3-contrib's ``RecurrentPPO``
    (``MlpLstmPolicy``, ``CnnLstmPolicy``, ``MultiInputLstmPolicy``); ``rollout_buffer_class`` and
    ``rollout_buffer_kwargs`` must be left unset.

    Rollouts are collected by ``RecurrentPPO``'s loop into sb3-contrib's recurrent rollout buffer, which
    stores the LSTM states at every step and computes SB3's GAE. The update reads the whole rollout as
    padded sequences, each unrolled from its stored hidden state (reset at episode starts), and leaves
    the padding out of every mean: the surrogate and its gradient, the measured KL, the Fisher-vector
    product (``J`` differentiates the distribution's parameters through the unrolled LSTM) and the
    critic's loss. ``sub_sampling_factor`` (``critic_sub_sampling_factor``) keeps every ``k``-th whole sequence for the
    Fisher (the trust-region critic's Gauss-Newton matrix).
    ``predict(observation, state, episode_start)`` works as in ``RecurrentPPO``.

    Paper: https://papers.nips.cc/paper/2001/hash/4b86abe48d358ecf194c56c69108433e-Abstract.html (NPG),
    https://arxiv.org/abs/1502.05477 (TRPO)
    """

    def _batch_distribution(self, batch: RecurrentRolloutBufferSamples) -> Distribution:  # type: ignore[override]
        # ``get_distribution`` refills one shared object: copy it so that earlier results survive later calls
        return copy.copy(sequence_distribution(self.policy, batch))

    def _fisher_batch(  # type: ignore[override]
        self, rollout: RecurrentRolloutBufferSamples, factor: int
    ) -> RecurrentRolloutBufferSamples:
        return subsample_sequences(rollout, factor)

    def _batch_values(self, batch: RecurrentRolloutBufferSamples) -> th.Tensor:  # type: ignore[override]
        return sequence_values(self.policy, batch)
