"""
RecurrentKLPPO: :class:`~sb3_npg.KLPPO` on sb3-contrib's LSTM policies.

The class is KLPPO with the recurrent rollouts of :class:`~sb3_npg.common.recurrent.RecurrentRollouts` and KLPPO's
hooks answered for padded sequences: ``evaluate_actions`` and the distributions of the current policy and of
``pi_old``, each unrolled from the sequence's stored LSTM state (:mod:`sb3_npg.common.lstm`). Its constructor takes
KLPPO's parameters, spelled out so that ``help()``, IDEs and the documentation show them.
"""

from typing import Any, ClassVar

import torch as th
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from sb3_npg.common.lstm import sequence_distribution
from sb3_npg.common.on_policy import RECURRENT_PARAMETERS, arguments_of, document_parameters
from sb3_npg.common.recurrent import RecurrentRollouts
from sb3_npg.klppo.klppo import KLPPO
from sb3_npg.klppo_recurrent.policies import CnnLstmPolicy, MlpLstmPolicy, MultiInputLstmPolicy


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

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpLstmPolicy": MlpLstmPolicy,
        "CnnLstmPolicy": CnnLstmPolicy,
        "MultiInputLstmPolicy": MultiInputLstmPolicy,
    }

    def __init__(
        self,
        policy: str | type[RecurrentActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule | None = None,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        target_kl: float | Schedule = 0.01,
        kl_coef: float = 1.0,
        kl_adaptation: str = "adaptive",
        kl_coef_min: float = 1e-3,
        kl_coef_max: float = 1e3,
        kl_dual_lr: float = 100.0,
        kl_early_stop: float | None = 1.25,
        kl_estimator: str = "auto",
        kl_lr_gain: float = 0.5,
        kl_lr_min: float = 0.01,
        kl_lr_max: float = 10.0,
        stats_window_size: int = 100,
        update_threads: int | str = "auto",
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        super().__init__(**arguments_of(KLPPO.__init__, locals()))

    def _evaluate_actions(  # type: ignore[override]
        self, batch: RecurrentRolloutBufferSamples, actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        evaluate_actions: Any = self.policy.evaluate_actions  # sb3-contrib's: (obs, actions, lstm_states, episode_starts)
        return evaluate_actions(batch.observations, actions, batch.lstm_states, batch.episode_starts)

    def _old_distribution(self, batch: RecurrentRolloutBufferSamples) -> Distribution:  # type: ignore[override]
        return sequence_distribution(self._old_policy, batch)

    def _new_distribution(self, batch: RecurrentRolloutBufferSamples) -> Distribution:  # type: ignore[override]
        return sequence_distribution(self.policy, batch)
