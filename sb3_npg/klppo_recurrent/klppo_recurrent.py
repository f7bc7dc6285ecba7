"""
RecurrentKLPPO: :class:`~sb3_npg.KLPPO` on sb3-contrib's LSTM policies.

The class is KLPPO with the recurrent rollouts of :class:`~sb3_npg.common.recurrent.RecurrentRollouts` and KLPPO's
hooks answered for padded sequences: ``evaluate_actions`` and the distributions of the current policy and of
``pi_old``, each unrolled from the sequence's stored LSTM state (:mod:`sb3_npg.common.lstm`).
Its constructor is KLPPO's: the same signature (``help()``, IDEs, the documentation), the same defaults.
"""

from typing import Any

import torch as th
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples
from stable_baselines3.common.distributions import Distribution

from sb3_npg.common.lstm import sequence_distribution
from sb3_npg.common.on_policy import RECURRENT_PARAMETERS, document_parameters
from sb3_npg.common.recurrent import RecurrentRollouts
from sb3_npg.klppo.klppo import KLPPO


@document_parameters(RECURRENT_PARAMETERS)
class RecurrentKLPPO(RecurrentRollouts, KLPPO):
    """
    PPO with an adaptive KL penalty (KLPPO) with a recurrent (LSTM) policy.

    It takes :class:`~sb3_npg.KLPPO`'s arguments and policies of sb3-contrib's ``RecurrentPPO``
    (``MlpLstmPolicy``, ``CnnLstmPolicy``, ``MultiInputLstmPolicy``); ``rollout_buffer_class`` and
    ``rollout_buffer_kwargs`` must be left unset.

    Rollouts are collected by ``RecurrentPPO``'s loop into sb3-contrib's recurrent rollout buffer. Its
    minibatches are padded sequences, each unrolled from its stored hidden state (reset at episode
    starts); the padding is left out of every mean: the surrogate, the KL penalty and the measured KL
    that drives the controller, the value loss and the entropy. ``pi_old`` is unrolled from the same
    stored states. ``predict(observation, state, episode_start)`` works as in ``RecurrentPPO``.

    Paper: https://arxiv.org/abs/1707.06347 (section 4, "Adaptive KL Penalty Coefficient")
    """

    def _evaluate_actions(  # type: ignore[override]
        self, batch: RecurrentRolloutBufferSamples, actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        evaluate_actions: Any = self.policy.evaluate_actions  # sb3-contrib's: (obs, actions, lstm_states, episode_starts)
        return evaluate_actions(batch.observations, actions, batch.lstm_states, batch.episode_starts)

    def _old_distribution(self, batch: RecurrentRolloutBufferSamples) -> Distribution:  # type: ignore[override]
        return sequence_distribution(self._old_policy, batch)

    def _new_distribution(self, batch: RecurrentRolloutBufferSamples) -> Distribution:  # type: ignore[override]
        return sequence_distribution(self.policy, batch)
