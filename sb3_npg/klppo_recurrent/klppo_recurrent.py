from typing import Any, ClassVar, TypeVar

import torch as th
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_npg.common.lstm import sequence_distribution
from sb3_npg.common.recurrent import RecurrentRollouts
from sb3_npg.klppo.klppo import KLPPO
from sb3_npg.klppo_recurrent.policies import CnnLstmPolicy, MlpLstmPolicy, MultiInputLstmPolicy

SelfRecurrentKLPPO = TypeVar("SelfRecurrentKLPPO", bound="RecurrentKLPPO")


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

    :param policy: The policy model to use (MlpLstmPolicy, CnnLstmPolicy, MultiInputLstmPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param kwargs: the other arguments of :class:`~sb3_npg.KLPPO`
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpLstmPolicy": MlpLstmPolicy,
        "CnnLstmPolicy": CnnLstmPolicy,
        "MultiInputLstmPolicy": MultiInputLstmPolicy,
    }

    def __init__(self, policy: str | type[MlpLstmPolicy], env: Any, **kwargs: Any):
        super().__init__(policy, env, **kwargs)

    def _evaluate_actions(  # type: ignore[override]
        self, batch: RecurrentRolloutBufferSamples, actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        evaluate_actions: Any = self.policy.evaluate_actions  # sb3-contrib's: (obs, actions, lstm_states, episode_starts)
        return evaluate_actions(batch.observations, actions, batch.lstm_states, batch.episode_starts)

    def _old_distribution(self, batch: RecurrentRolloutBufferSamples) -> Distribution:  # type: ignore[override]
        return sequence_distribution(self._old_policy, batch)

    def _new_distribution(self, batch: RecurrentRolloutBufferSamples) -> Distribution:  # type: ignore[override]
        return sequence_distribution(self.policy, batch)

    def learn(
        self: SelfRecurrentKLPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "RecurrentKLPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRecurrentKLPPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
