"""
Recurrent (LSTM) policies for the recurrent algorithms: sb3-contrib's, with two changes.

The LSTM runs over a training sequence in one call (:func:`~sb3_npg.common.lstm.unroll_lstm`) rather than one Python
call per time step, for the same result; and the rollout step skips ``torch.distributions``' argument checks
(:class:`~sb3_npg.common.policies.UncheckedRolloutStep`).
"""

from sb3_contrib.common.recurrent.policies import (
    RecurrentActorCriticCnnPolicy,
    RecurrentActorCriticPolicy,
    RecurrentMultiInputActorCriticPolicy,
)

from sb3_npg.common.lstm import unroll_lstm
from sb3_npg.common.policies import UncheckedRolloutStep


class MlpLstmPolicy(UncheckedRolloutStep, RecurrentActorCriticPolicy):
    """
    sb3-contrib's ``MlpLstmPolicy``, with the same arguments.

    Its LSTMs run over a training sequence by :func:`~sb3_npg.common.lstm.unroll_lstm`; its rollout step
    skips the distribution's argument checks (:mod:`sb3_npg.common.policies`).
    """

    _process_sequence = staticmethod(unroll_lstm)  # type: ignore[assignment]


class CnnLstmPolicy(UncheckedRolloutStep, RecurrentActorCriticCnnPolicy):
    """
    sb3-contrib's ``CnnLstmPolicy``, with the same arguments.

    Its LSTMs run over a training sequence by :func:`~sb3_npg.common.lstm.unroll_lstm`; its rollout step
    skips the distribution's argument checks (:mod:`sb3_npg.common.policies`).
    """

    _process_sequence = staticmethod(unroll_lstm)  # type: ignore[assignment]


class MultiInputLstmPolicy(UncheckedRolloutStep, RecurrentMultiInputActorCriticPolicy):
    """
    sb3-contrib's ``MultiInputLstmPolicy``, with the same arguments.

    Its LSTMs run over a training sequence by :func:`~sb3_npg.common.lstm.unroll_lstm`; its rollout step
    skips the distribution's argument checks (:mod:`sb3_npg.common.policies`).
    """

    _process_sequence = staticmethod(unroll_lstm)  # type: ignore[assignment]
