"""
Checkpoints of the learning benchmark's runs: a run killed halfway continues from its last one.

Every ``checkpoint_freq`` environment steps, at the start of a rollout (between two updates), a run saves its model
with the optimizer's state, the ``VecNormalize`` statistics, its evaluations so far, its training time so far, the
machines it trained on and the random number generators, to ``<results-dir>/checkpoints/<algo>_<env>_<seed>_<budget>/``
(replaced only once the new one is whole). Started again, the run loads it and trains on to the same budget.

- :func:`with_checkpoints`: a run's checkpoint folder;
- :class:`Checkpointing` (the callback that saves), :func:`save_checkpoint`, :func:`load_checkpoint`,
  :func:`remove_checkpoint`, :func:`resume`;
- :class:`RunClock`: the time of a run's ``learn()`` over all its segments.
"""

from __future__ import annotations

import pickle
import random
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_normalize

from common.algos import algorithm_class
from common.evaluation import PeriodicEvaluation
from common.planner import RunSpec
from common.results import utc_now

CHECKPOINTS_DIR = "checkpoints"
"""Where unfinished runs keep their checkpoints (one folder per run), under the results directory."""
DEFAULT_CHECKPOINT_FREQ = 100_000


class RunClock:
    """
    The time of a run's ``learn()`` over all its segments (a resumed run has several), less checkpointing.

    :param seconds_before: the time of the earlier segments
    """

    def __init__(self, seconds_before: float = 0.0) -> None:
        self.seconds_before = seconds_before
        self.checkpoint_seconds = 0.0
        self._start = time.perf_counter()

    def seconds(self) -> float:
        """Seconds of ``learn()`` so far, every segment included, checkpoints excluded."""
        return self.seconds_before + time.perf_counter() - self._start - self.checkpoint_seconds


def with_checkpoints(spec: RunSpec, results_dir: Path, checkpoint_freq: int) -> RunSpec:
    """
    The run with its checkpoint folder, ``<results_dir>/checkpoints/<algo>_<env>_<seed>_<budget>``; a run
    that already has one there resumes from it even with ``checkpoint_freq=0`` (then it saves no new ones).

    :param spec: the run
    :param results_dir: the results directory
    :param checkpoint_freq: environment steps between checkpoints (0: none)
    :return: the run, with ``checkpoint_freq`` and ``checkpoint_dir`` set
    """
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{spec.label}_{spec.env}_{spec.seed}_{spec.timesteps}")
    return replace(spec, checkpoint_freq=checkpoint_freq, checkpoint_dir=str(results_dir / CHECKPOINTS_DIR / name))


class Checkpointing(BaseCallback):
    """
    Save the run every ``checkpoint_freq`` environment steps, at the start of a rollout (between two updates,
    so that nothing is half done): the model with its optimizer, the ``VecNormalize`` statistics, the
    evaluations so far, the time so far and the random number generators' states.

    :param spec: the run
    :param evaluation: the run's evaluation callback
    :param clock: the run's clock
    :param hosts: the machines the run has trained on so far, this one last
    """

    def __init__(self, spec: RunSpec, evaluation: PeriodicEvaluation, clock: RunClock, hosts: list[str]) -> None:
        super().__init__(verbose=0)
        self.spec = spec
        self.evaluation = evaluation
        self.clock = clock
        self.hosts = hosts
        self._next_save = 0

    def _on_training_start(self) -> None:
        steps = int(self.model.num_timesteps)
        self._next_save = (steps // self.spec.checkpoint_freq + 1) * self.spec.checkpoint_freq

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps < self._next_save:
            return
        start = time.perf_counter()
        normalize = self.model.get_vec_normalize_env()
        state = {
            "key": self.spec.key,
            "hyperparams": self.spec.hyperparams,
            "num_timesteps": int(self.model.num_timesteps),
            "evaluation": self.evaluation.state(),
            "learn_seconds": self.clock.seconds(),
            "hosts": self.hosts,
            "normalize": None if normalize is None else (normalize.obs_rms, normalize.ret_rms),
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": th.get_rng_state()},
            "saved": utc_now(),
        }
        save_checkpoint(Path(self.spec.checkpoint_dir), self.model, state)
        while self._next_save <= self.model.num_timesteps:
            self._next_save += self.spec.checkpoint_freq
        self.clock.checkpoint_seconds += time.perf_counter() - start

    def _on_step(self) -> bool:
        return True


def save_checkpoint(path: Path, model: BaseAlgorithm, state: dict[str, Any]) -> None:
    """
    Write a run's checkpoint to ``path`` (a folder), replacing the previous one only once the new one is whole.

    :param path: the run's checkpoint folder
    :param model: the model
    :param state: the rest of the run's state (see :class:`Checkpointing`)
    """
    tmp = path.with_name(path.name + ".tmp")
    old = path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    with open(tmp / "state.pkl", "wb") as file:  # written last: its presence marks a whole checkpoint
        pickle.dump(state, file)
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(spec: RunSpec) -> tuple[Path, dict[str, Any]] | None:
    """
    The run's latest whole checkpoint, if it has one of this very run (same key and hyperparameters).

    :param spec: the run
    :return: the checkpoint's folder and state, or ``None``
    """
    if not spec.checkpoint_dir:
        return None
    path = Path(spec.checkpoint_dir)
    for candidate in (path, path.with_name(path.name + ".old")):  # .old: a kill between the two renames
        if (candidate / "state.pkl").exists() and (candidate / "model.zip").exists():
            with open(candidate / "state.pkl", "rb") as file:
                state = pickle.load(file)
            if state["key"] == spec.key and state["hyperparams"] == spec.hyperparams:
                return candidate, state
            print(f"ignoring the checkpoint in {candidate}: it is of another run", flush=True)
            return None
    return None


def remove_checkpoint(spec: RunSpec) -> None:
    """
    Delete a finished run's checkpoint folder (and any leftover of an interrupted save).

    :param spec: the run
    """
    if spec.checkpoint_dir:
        path = Path(spec.checkpoint_dir)
        for candidate in (path, path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")):
            shutil.rmtree(candidate, ignore_errors=True)


def resume(
    spec: RunSpec, checkpoint: tuple[Path, dict[str, Any]], env: VecEnv, evaluation: PeriodicEvaluation, hosts: list[str]
) -> tuple[BaseAlgorithm, RunClock]:
    """
    Load a run from its checkpoint: the model, the normalisation statistics, the evaluations, the clock and the
    random number generators. The environments start new episodes (reseeded with ``seed + steps``): a
    simulator's state mid-episode is not saved.

    :param spec: the run
    :param checkpoint: its folder and state (:func:`load_checkpoint`)
    :param env: the run's training environment, new
    :param evaluation: the run's evaluation callback, new: it gets the evaluations so far
    :param hosts: the machines of the run, this one: the earlier ones are put before it
    :return: the model and the run's clock, at the checkpoint's step and time
    """
    path, state = checkpoint
    model = algorithm_class(spec.algo).load(path / "model.zip", env=env, device=spec.device)
    normalize = unwrap_vec_normalize(env)
    if state["normalize"] is not None and normalize is not None:
        normalize.obs_rms, normalize.ret_rms = state["normalize"]
    env.seed(spec.seed + int(state["num_timesteps"]))
    evaluation.restore(state["evaluation"])
    random.setstate(state["rng"]["python"])
    np.random.set_state(state["rng"]["numpy"])
    th.set_rng_state(state["rng"]["torch"])
    hosts[:0] = state["hosts"]
    print(
        f"resume {spec.label} {spec.env} seed {spec.seed} from {state['num_timesteps']} steps "
        f"(checkpoint of {state['saved']})",
        flush=True,
    )
    return model, RunClock(float(state["learn_seconds"]))
