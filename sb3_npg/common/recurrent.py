"""
The rollouts of the recurrent algorithms (:class:`RecurrentRollouts`), on sb3-contrib's recurrent machinery.

:class:`RecurrentRollouts` is a mixin for ``NPG`` and ``KLPPO``: it swaps the flat rollout buffer for
sb3-contrib's ``RecurrentRolloutBuffer`` (or ``RecurrentDictRolloutBuffer``), keeps the LSTM states
across rollouts, and collects rollouts with ``RecurrentPPO``'s own loop (hidden states stored at every
step, reset at episode starts, time-outs bootstrapped with the critic's LSTM state). The algorithms read
batches of padded sequences through their ``_batch_*`` hooks; this mixin gives the recurrent answers:
distributions and values unrolled over each sequence from its stored hidden state
(:mod:`sb3_npg.common.lstm`), and the padding mask as the weights of every mean.

The LSTM policies live in :mod:`sb3_npg.common.recurrent_policies`; they are imported here too, because models
saved by sb3-npg 0.1 name their policy class by this module's path.
"""

from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer, RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.policies import (
    RecurrentActorCriticPolicy,
)
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv

from sb3_npg.common.recurrent_policies import CnnLstmPolicy, MlpLstmPolicy, MultiInputLstmPolicy

__all__ = ["CnnLstmPolicy", "MlpLstmPolicy", "MultiInputLstmPolicy", "RecurrentRollouts"]


class RecurrentRollouts(OnPolicyAlgorithm):
    """
    Mixin that makes an on-policy algorithm of this package train a ``RecurrentActorCriticPolicy``.

    Put it first among the bases (``class RecurrentNPG(RecurrentRollouts, NPG)``): its ``policy_aliases`` are the
    LSTM policies (the names ``RecurrentPPO`` uses), and its ``_setup_model`` runs the algorithm's, then replaces the
    flat rollout buffer with a recurrent one.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpLstmPolicy": MlpLstmPolicy,
        "CnnLstmPolicy": CnnLstmPolicy,
        "MultiInputLstmPolicy": MultiInputLstmPolicy,
    }
    _last_lstm_states: RNNStates

    def _setup_model(self) -> None:
        recurrent_buffers = (RecurrentRolloutBuffer, RecurrentDictRolloutBuffer)
        if self.rollout_buffer_class not in (None, *recurrent_buffers) or self.rollout_buffer_kwargs:
            raise ValueError(
                "rollout_buffer_class and rollout_buffer_kwargs must be left unset with a recurrent policy: "
                "the recurrent buffer is chosen from the observation space"
            )
        self.rollout_buffer_class = None  # the flat buffer the base class builds is replaced below
        super()._setup_model()
        if not isinstance(self.policy, RecurrentActorCriticPolicy):
            raise ValueError(
                "policy must be a RecurrentActorCriticPolicy (MlpLstmPolicy, CnnLstmPolicy or MultiInputLstmPolicy), "
                f"got {type(self.policy).__name__}"
            )
        lstm = self.policy.lstm_actor
        state_shape = (lstm.num_layers, self.n_envs, lstm.hidden_size)

        def zeros() -> th.Tensor:
            return th.zeros(state_shape, device=self.device)

        self._last_lstm_states = RNNStates((zeros(), zeros()), (zeros(), zeros()))
        dict_obs = isinstance(self.observation_space, spaces.Dict)
        buffer_class = RecurrentDictRolloutBuffer if dict_obs else RecurrentRolloutBuffer
        self.rollout_buffer_class = buffer_class
        self.rollout_buffer = buffer_class(
            self.n_steps,
            self.observation_space,
            self.action_space,
            (self.n_steps, *state_shape),
            self.device,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            n_envs=self.n_envs,
        )

    def collect_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int
    ) -> bool:
        """
        Fill the recurrent rollout buffer with ``RecurrentPPO``'s collection loop (see its documentation).

        :param env: the training environment
        :param callback: called at every step, and at the start and end of the rollout
        :param rollout_buffer: the recurrent buffer to fill
        :param n_rollout_steps: steps to collect per environment
        :return: ``False`` when a callback stopped the rollout early
        """
        return RecurrentPPO.collect_rollouts(self, env, callback, rollout_buffer, n_rollout_steps)  # type: ignore[arg-type]

    def _batch_weights(self, batch: Any) -> th.Tensor:
        """The padding mask: 1 on the real steps of the batch, 0 on the padding."""
        return batch.mask

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_last_lstm_states"]
