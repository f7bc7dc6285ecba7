import copy
from typing import Any, ClassVar, TypeVar

import torch as th
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_npg.common.lstm import sequence_distribution, sequence_values, subsample_sequences
from sb3_npg.common.recurrent import RecurrentRollouts
from sb3_npg.npg.npg import NPG
from sb3_npg.npg_recurrent.policies import CnnLstmPolicy, MlpLstmPolicy, MultiInputLstmPolicy

SelfRecurrentNPG = TypeVar("SelfRecurrentNPG", bound="RecurrentNPG")


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
    critic's loss. ``sub_sampling_factor`` keeps every ``k``-th whole sequence for the Fisher.
    ``predict(observation, state, episode_start)`` works as in ``RecurrentPPO``.

    :param policy: The policy model to use (MlpLstmPolicy, CnnLstmPolicy, MultiInputLstmPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param kwargs: the other arguments of :class:`~sb3_npg.NPG`
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpLstmPolicy": MlpLstmPolicy,
        "CnnLstmPolicy": CnnLstmPolicy,
        "MultiInputLstmPolicy": MultiInputLstmPolicy,
    }

    def __init__(self, policy: str | type[MlpLstmPolicy], env: Any, **kwargs: Any):
        super().__init__(policy, env, **kwargs)

    def _batch_distribution(self, batch: RecurrentRolloutBufferSamples) -> Distribution:  # type: ignore[override]
        # ``get_distribution`` refills one shared object: copy it so that earlier results survive later calls
        return copy.copy(sequence_distribution(self.policy, batch))

    def _fisher_batch(self, rollout: RecurrentRolloutBufferSamples) -> RecurrentRolloutBufferSamples:  # type: ignore[override]
        return subsample_sequences(rollout, self.sub_sampling_factor)

    def _batch_values(self, batch: RecurrentRolloutBufferSamples) -> th.Tensor:  # type: ignore[override]
        return sequence_values(self.policy, batch)

    def learn(
        self: SelfRecurrentNPG,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "RecurrentNPG",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRecurrentNPG:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
