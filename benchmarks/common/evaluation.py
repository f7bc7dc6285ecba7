"""
The learning benchmark's evaluation: deterministic episodes on a separate environment before training, every
``eval_freq`` environment steps and at the end, timed apart from training.

:class:`PeriodicEvaluation` is Stable-Baselines3's ``EvalCallback``: it evaluates with SB3's code (its ``VecNormalize``
statistics copied from training by ``sync_envs_normalization``, ``evaluate_policy``, the ``eval/`` logger keys); this
subclass only decides when (by environment steps rather than by calls), keeps every evaluation's mean and std, times
them, and saves and restores them in a run's checkpoints. The defaults of ``learning.py``'s evaluation are here too.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_normalize

EVAL_SEED_OFFSET = 10_000
"""The evaluation environment of a run is seeded ``seed + EVAL_SEED_OFFSET``."""
EVAL_ENVS = 10
"""Most copies of the evaluation environment: its episodes run side by side, one per copy."""
EVALS_PER_RUN = 20
"""Evaluations per run when ``--eval-freq`` is not given (plus the one before training)."""
DEFAULT_EVAL_EPISODES = 10
"""``learning.py``'s ``--eval-episodes``."""


def default_eval_freq(timesteps: int) -> int:
    """
    The evaluation interval when ``--eval-freq`` is not given (``plot_learning.py``'s commands use the same rule).

    :param timesteps: the run's budget
    :return: ``timesteps // 20``, at least 1
    """
    return max(1, timesteps // EVALS_PER_RUN)


class PeriodicEvaluation(EvalCallback):
    """
    Deterministic evaluation on a separate environment before training and every ``eval_freq`` environment steps,
    timed apart from training.

    The evaluation itself is ``EvalCallback``'s; its ``eval_freq`` counts calls of the callback, so it is 1 here and
    this class calls it only when the next multiple of :attr:`interval` environment steps is reached.

    :param eval_env: the evaluation environment (its ``VecNormalize``, if any, is frozen here: statistics not
        updated, rewards not normalised, so that returns are raw episode returns)
    :param eval_freq: environment steps between evaluations
    :param n_episodes: episodes per evaluation
    :param label: printed with each evaluation's result (progress of long runs); empty: print nothing
    """

    def __init__(self, eval_env: VecEnv, eval_freq: int, n_episodes: int, label: str = "") -> None:
        super().__init__(eval_env, n_eval_episodes=n_episodes, eval_freq=1, deterministic=True, verbose=0)
        self.interval = eval_freq
        self.label = label
        self.records: list[tuple[int, float, float]] = []
        self.eval_seconds = 0.0
        self._next_eval = 0
        self._episode_rewards: list[float] = []
        eval_normalize = unwrap_vec_normalize(self.eval_env)
        if eval_normalize is not None:
            eval_normalize.training = False
            eval_normalize.norm_reward = False

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        # Called by evaluate_policy at every step with its locals: keep its list of episode returns, which it
        # returns whole at the end (EvalCallback keeps only their mean)
        super()._log_success_callback(locals_, globals_)
        self._episode_rewards = locals_["episode_rewards"]

    def evaluate(self) -> None:
        """Evaluate the current policy (``EvalCallback``'s evaluation), record its mean and std and time it."""
        start = time.perf_counter()
        self.num_timesteps = steps = int(self.model.num_timesteps)
        self._episode_rewards = []
        super()._on_step()
        mean, std = float(np.mean(self._episode_rewards)), float(np.std(self._episode_rewards))
        self.records.append((steps, mean, std))
        if self.label:
            print(f"eval {self.label} at {steps} steps: {mean:.1f} +- {std:.1f}", flush=True)
        while self._next_eval <= steps:
            self._next_eval += self.interval
        self.eval_seconds += time.perf_counter() - start

    def _on_training_start(self) -> None:
        super()._on_training_start()
        if not self.records:  # a resumed run has its evaluations so far
            self.evaluate()

    def _on_step(self) -> bool:
        if self.model.num_timesteps >= self._next_eval:
            self.evaluate()
        return True

    def state(self) -> dict[str, Any]:
        """
        What a checkpoint keeps of the evaluations.

        :return: the evaluations so far, their time and the step of the next one
        """
        return {"records": list(self.records), "eval_seconds": self.eval_seconds, "next_eval": self._next_eval}

    def restore(self, state: dict[str, Any]) -> None:
        """
        Continue from a checkpoint's :meth:`state`.

        :param state: the state
        """
        self.records = list(state["records"])
        self.eval_seconds = float(state["eval_seconds"])
        self._next_eval = int(state["next_eval"])
        if self.records:
            self.last_mean_reward = self.records[-1][1]
            self.best_mean_reward = max(mean for _, mean, _ in self.records)
