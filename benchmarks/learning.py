"""
Learning benchmark: algorithm x environment x seed, each algorithm with its own zoo-format hyperparameters.

The peers (``trpo`` from sb3-contrib, ``ppo`` and ``a2c`` from Stable-Baselines3) take the entry of the
installed rl-baselines3-zoo's ``hyperparams/<algo>.yml`` for the environment; ours (``npg``, ``klppo``)
take the files this package ships (``sb3_npg/zoo/hyperparams/<algo>.yml``), read by
:mod:`sb3_npg.zoo.config`. The zoo has no ``-v5`` MuJoCo entries: a peer without an entry for an
environment takes the entry of the newest older version of it (``HalfCheetah-v4`` for ``HalfCheetah-v5``),
as our own files did when they were adapted, and the row says which entry it used. A run with no entry
at all is skipped, with a message.

Each run trains for its budget (the entry's ``n_timesteps`` unless ``--timesteps ENV=N`` or
``--budget-scale`` says otherwise) and evaluates the policy deterministically on a separate environment
(seeded ``seed + 10_000``, ``VecNormalize`` statistics copied from training and frozen, rewards not
normalised) before training, every ``--eval-freq`` environment steps and at the end. ``wall_s`` is the
time of ``learn()`` less the time spent evaluating, and ``fps`` the environment steps per second of it.

Results go to ``--results-dir`` (default ``benchmarks/results``), written by this (parent) process only,
one run at a time as runs finish:

- ``learning.csv``: one row per finished run;
- ``learning_curves.csv``: the evaluations of each finished run (a run killed halfway leaves only its checkpoint).

A run already in ``learning.csv`` (same algo, env, seed and budget) is skipped, so an interrupted
benchmark resumes where it stopped. A run also saves a checkpoint every ``--checkpoint-freq`` steps
(default 100k, between two updates) under ``<results-dir>/checkpoints/``; started again, an unfinished
run continues from its checkpoint (its environments start new episodes there) and the folder is deleted
once the run is recorded. ``--jobs N`` runs N runs at once, each in its own process with one
torch thread.

    python benchmarks/learning.py --envs CartPole-v1 Acrobot-v1 --seeds 0 1 2 --jobs 2
    python benchmarks/learning.py --envs HalfCheetah-v5 Hopper-v5 --timesteps HalfCheetah-v5=200000 Hopper-v5=200000
    python benchmarks/learning.py --dry-run          # the runs, budgets and hyperparameter entries, without running
    python benchmarks/learning.py --suite recurrent  # LSTM policies on the NoVel tasks: npg_lstm, klppo_lstm, ppo_lstm

``--suite recurrent`` compares the recurrent algorithms (``npg_lstm``, ``klppo_lstm`` and sb3-contrib's
``RecurrentPPO`` as ``ppo_lstm``, with the zoo's ``ppo_lstm.yml``) on rl-zoo3's velocity-masked tasks
(``CartPoleNoVel-v1``, ...), where a policy needs memory.

``--variant NAME KEY=VALUE ...`` (repeatable) runs every algorithm of ``--algos`` with its entry changed by the
overrides instead of as shipped, recorded as algorithm ``<algo>:<NAME>``; a value written ``<x>*d`` is ``x``
times the number of action dimensions of the environment (of a ``Box`` or ``MultiBinary`` action, else 1):

    python benchmarks/learning.py --algos npg --envs HalfCheetah-v5 --results-dir benchmarks/results/ablation \
        --variant trpo-semantics cg_damping=0.1*d damped_step_size=true --variant shipped
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime
import multiprocessing
import os
import pickle
import platform
import random
import re
import shutil
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize

from sb3_npg.zoo import config

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RUNS_FILE = "learning.csv"
CURVES_FILE = "learning_curves.csv"
# Where unfinished runs keep their checkpoints (one folder per run), under the results directory
CHECKPOINTS_DIR = "checkpoints"
DEFAULT_CHECKPOINT_FREQ = 100_000

SUITE = (
    "CartPole-v1",
    "Acrobot-v1",
    "Pendulum-v1",
    "MountainCarContinuous-v0",
    "LunarLanderContinuous-v3",
    "HalfCheetah-v5",
    "Hopper-v5",
)
# Partially observed tasks (rl-zoo3 masks the velocities), for the recurrent (LSTM) algorithms
RECURRENT_SUITE = (
    "CartPoleNoVel-v1",
    "PendulumNoVel-v1",
    "MountainCarContinuousNoVel-v0",
    "LunarLanderNoVel-v3",
)
OUR_ALGOS = ("npg", "klppo", "npg_lstm", "klppo_lstm")
# Zoo name -> (module, class) of the peers
PEER_ALGOS = {
    "trpo": ("sb3_contrib", "TRPO"),
    "ppo": ("stable_baselines3", "PPO"),
    "a2c": ("stable_baselines3", "A2C"),
    "ppo_lstm": ("sb3_contrib", "RecurrentPPO"),
}
DEFAULT_ALGOS = ("npg", "klppo", "trpo", "ppo")
RECURRENT_ALGOS = ("npg_lstm", "klppo_lstm", "ppo_lstm")
# --suite NAME -> the default environments and algorithms
SUITES = {"standard": (SUITE, DEFAULT_ALGOS), "recurrent": (RECURRENT_SUITE, RECURRENT_ALGOS)}
EVAL_SEED_OFFSET = 10_000
# Most copies of the evaluation environment
EVAL_ENVS = 10
# Evaluations per run when --eval-freq is not given (plus the one before training)
EVALS_PER_RUN = 20

RUN_FIELDS = (
    "algo",
    "env",
    "seed",
    "timesteps",
    "eval_mean",
    "eval_std",
    "wall_s",
    "fps",
    "steps",
    "eval_s",
    "n_envs",
    "eval_freq",
    "eval_episodes",
    "hyperparams",
    "device",
    "finished",
    "host",
)
CURVE_FIELDS = ("algo", "env", "seed", "budget", "timesteps", "eval_mean", "eval_std")

_VERSION = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")


@dataclass(frozen=True)
class RunSpec:
    """One run: what to train, for how long, with which hyperparameters, and how to evaluate it."""

    algo: str
    env: str
    seed: int
    timesteps: int
    eval_freq: int
    eval_episodes: int
    entry: dict[str, Any] = field(hash=False, compare=False)
    source: str = ""
    device: str = "cpu"
    variant: str = ""
    overrides: str = ""
    checkpoint_freq: int = 0
    checkpoint_dir: str = ""

    @property
    def label(self) -> str:
        """The name of the run's algorithm in the results: ``<algo>`` or ``<algo>:<variant>``."""
        return f"{self.algo}:{self.variant}" if self.variant else self.algo

    @property
    def key(self) -> tuple[str, str, int, int]:
        """What identifies a finished run in ``learning.csv``."""
        return (self.label, self.env, self.seed, self.timesteps)

    @property
    def hyperparams(self) -> str:
        """Where the run's hyperparameters come from, and what it changes (the ``hyperparams`` column)."""
        return f"{self.source} with {self.overrides}" if self.overrides else self.source


def default_eval_freq(timesteps: int) -> int:
    """
    The evaluation interval when ``--eval-freq`` is not given (``plot_learning.py`` uses the same rule).

    :param timesteps: the run's budget
    :return: ``timesteps // 20``, at least 1
    """
    return max(1, timesteps // EVALS_PER_RUN)


def zoo_hyperparams_file(algo: str) -> Path:
    """
    The installed rl-baselines3-zoo's hyperparameter file of a peer.

    :param algo: ``"trpo"``, ``"ppo"``, ``"a2c"`` or ``"ppo_lstm"``
    :return: the path of ``rl_zoo3/hyperparams/<algo>.yml``
    """
    try:
        import rl_zoo3
    except ImportError as error:
        raise ImportError('the peers take the zoo\'s hyperparameters: pip install "sb3-npg[zoo]"') from error
    return Path(rl_zoo3.__file__).resolve().parent / "hyperparams" / f"{algo}.yml"


def _entries(algo: str) -> tuple[dict[str, Any], str]:
    """Every entry of the hyperparameter file of ``algo`` and a short name of the file."""
    if algo in OUR_ALGOS:
        return config.load_all_hyperparams(algo), f"sb3_npg {algo}.yml"
    if algo in PEER_ALGOS:
        with open(zoo_hyperparams_file(algo)) as file:
            return dict(yaml.safe_load(file) or {}), f"rl_zoo3 {algo}.yml"
    raise ValueError(f"unknown algo {algo!r}: choose from {sorted((*OUR_ALGOS, *PEER_ALGOS))}")


def _older_version(env_id: str, keys: Iterable[str]) -> str | None:
    """The newest ``<name>-v<k>`` among ``keys`` with ``k`` below the version of ``env_id``, if any."""
    match = _VERSION.match(env_id)
    if match is None:
        return None
    name, version = match["name"], int(match["version"])
    candidates = []
    for key in keys:
        other = _VERSION.match(str(key))
        if other is not None and other["name"] == name and int(other["version"]) < version:
            candidates.append((int(other["version"]), str(key)))
    return max(candidates)[1] if candidates else None


def resolve_entry(algo: str, env_id: str, version_fallback: bool = True) -> tuple[dict[str, Any], str] | None:
    """
    The hyperparameters of ``algo`` for ``env_id``: ours from the shipped files, the peers' from the zoo's.

    A peer without an entry for ``env_id`` takes the entry of the newest older version of the same
    environment when ``version_fallback`` is set (the zoo stops at the ``-v4`` MuJoCo environments).
    An Atari game without an entry takes the file's ``atari`` entry, as in the zoo.

    :param algo: a name of ``OUR_ALGOS`` or ``PEER_ALGOS``
    :param env_id: a Gymnasium environment id
    :param version_fallback: whether a peer may use an older version's entry
    :return: the entry and where it comes from (``"rl_zoo3 trpo.yml[HalfCheetah-v4]"``), or ``None``
    """
    entries, file_name = _entries(algo)
    key: str | None = env_id
    if env_id not in entries:
        key = None
        if config.ATARI_KEY in entries and config.is_atari(env_id):
            key = config.ATARI_KEY
        elif version_fallback and algo in PEER_ALGOS:
            key = _older_version(env_id, entries)
    if key is None:
        return None
    return dict(entries[key]), f"{file_name}[{key}]"


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """
    The class of an algorithm, by its zoo name.

    :param algo: a name of ``OUR_ALGOS`` or ``PEER_ALGOS``
    :return: the class
    """
    if algo in OUR_ALGOS:
        return config.algorithm_class(algo)
    module_name, class_name = PEER_ALGOS[algo]
    module = __import__(module_name, fromlist=[class_name])
    return getattr(module, class_name)


def _find_vec_normalize(env: VecEnv) -> VecNormalize | None:
    """The ``VecNormalize`` wrapper of a wrapper chain, if there is one."""
    while True:
        if isinstance(env, VecNormalize):
            return env
        if not isinstance(env, VecEnvWrapper):
            return None
        env = env.venv


class PeriodicEvaluation(BaseCallback):
    """
    Deterministic evaluation on a separate environment before training and every ``eval_freq`` steps,
    timed apart from training.

    :param eval_env: the evaluation environment (its ``VecNormalize``, if any, is frozen here)
    :param eval_freq: environment steps between evaluations
    :param n_episodes: episodes per evaluation
    :param label: printed with each evaluation's result (progress of long runs); empty: print nothing
    """

    def __init__(self, eval_env: VecEnv, eval_freq: int, n_episodes: int, label: str = "") -> None:
        super().__init__(verbose=0)
        self.label = label
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.n_episodes = n_episodes
        self.records: list[tuple[int, float, float]] = []
        self.eval_seconds = 0.0
        self._next_eval = 0
        eval_normalize = _find_vec_normalize(eval_env)
        if eval_normalize is not None:
            eval_normalize.training = False
            eval_normalize.norm_reward = False

    def evaluate(self) -> None:
        """Copy the training environment's normalisation statistics, then evaluate the current policy."""
        start = time.perf_counter()
        steps = int(self.model.num_timesteps)
        train_normalize = _find_vec_normalize(self.model.get_env())  # type: ignore[arg-type]
        eval_normalize = _find_vec_normalize(self.eval_env)
        if train_normalize is not None and eval_normalize is not None:
            eval_normalize.obs_rms = copy.deepcopy(train_normalize.obs_rms)
            eval_normalize.ret_rms = copy.deepcopy(train_normalize.ret_rms)
        mean, std = cast(
            tuple[float, float],
            evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.n_episodes, deterministic=True),
        )
        self.records.append((steps, float(mean), float(std)))
        if self.label:
            print(f"eval {self.label} at {steps} steps: {mean:.1f} +- {std:.1f}", flush=True)
        while self._next_eval <= steps:
            self._next_eval += self.eval_freq
        self.eval_seconds += time.perf_counter() - start

    def _on_training_start(self) -> None:
        if not self.records:  # a resumed run has its evaluations so far
            self.evaluate()

    def _on_step(self) -> bool:
        if self.model.num_timesteps >= self._next_eval:
            self.evaluate()
        return True

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the evaluations."""
        return {"records": list(self.records), "eval_seconds": self.eval_seconds, "next_eval": self._next_eval}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's :meth:`state`."""
        self.records = list(state["records"])
        self.eval_seconds = float(state["eval_seconds"])
        self._next_eval = int(state["next_eval"])


class RunClock:
    """The time of a run's ``learn()`` over all its segments (a resumed run has several), less checkpointing."""

    def __init__(self, seconds_before: float = 0.0) -> None:
        self.seconds_before = seconds_before
        self.checkpoint_seconds = 0.0
        self._start = time.perf_counter()

    def seconds(self) -> float:
        """Seconds of ``learn()`` so far, every segment included, checkpoints excluded."""
        return self.seconds_before + time.perf_counter() - self._start - self.checkpoint_seconds


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
        normalize = _find_vec_normalize(self.model.get_env())  # type: ignore[arg-type]
        state = {
            "key": self.spec.key,
            "hyperparams": self.spec.hyperparams,
            "num_timesteps": int(self.model.num_timesteps),
            "evaluation": self.evaluation.state(),
            "learn_seconds": self.clock.seconds(),
            "hosts": self.hosts,
            "normalize": None if normalize is None else (normalize.obs_rms, normalize.ret_rms),
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": th.get_rng_state()},
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
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
    """Delete a finished run's checkpoint folder (and any leftover of an interrupted save)."""
    if spec.checkpoint_dir:
        path = Path(spec.checkpoint_dir)
        for candidate in (path, path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")):
            shutil.rmtree(candidate, ignore_errors=True)


def host_description() -> str:
    """The machine a run trained on, as ``"<n>-cpu <architecture>"``: steps/s compare only within one."""
    return f"{os.cpu_count()}-cpu {platform.machine()}"


def run_one(spec: RunSpec) -> dict[str, Any]:
    """
    Train and evaluate one run (in a worker process, or in this one with ``--jobs 1``).

    :param spec: the run
    :return: ``{"row": <learning.csv row>, "curve": [<learning_curves.csv rows>]}``
    """
    th.set_num_threads(1)
    entry = spec.entry
    env = config.make_env_from_hyperparams(entry, spec.env, seed=spec.seed)
    # The evaluation episodes run side by side (one policy forward pass for all of them, one episode per copy
    # up to EVAL_ENVS copies): the same episodes as one after another, for a fraction of the time
    n_eval_envs = min(spec.eval_episodes, EVAL_ENVS)
    eval_env = config.make_env_from_hyperparams(entry, spec.env, seed=spec.seed + EVAL_SEED_OFFSET, n_envs=n_eval_envs)
    evaluation = PeriodicEvaluation(eval_env, spec.eval_freq, spec.eval_episodes, f"{spec.label} {spec.env} seed {spec.seed}")
    hosts = [host_description()]
    checkpoint = load_checkpoint(spec)
    if checkpoint is None:
        kwargs = config.constructor_kwargs(entry)
        kwargs.update(verbose=0, device=spec.device)
        model = algorithm_class(spec.algo)(entry.get("policy", "MlpPolicy"), env, seed=spec.seed, **kwargs)
        clock = RunClock()
    else:
        model, clock = _resume(spec, checkpoint, env, evaluation, hosts)
    callbacks: list[BaseCallback] = [evaluation]
    if spec.checkpoint_freq > 0 and spec.checkpoint_dir:
        callbacks.append(Checkpointing(spec, evaluation, clock, hosts))

    # learn() counts on from the checkpoint's steps: the run ends at the same budget, on the same schedules
    model.learn(
        total_timesteps=spec.timesteps - model.num_timesteps, callback=CallbackList(callbacks), reset_num_timesteps=False
    )
    wall = clock.seconds() - evaluation.eval_seconds
    if evaluation.records[-1][0] != model.num_timesteps:
        evaluation.evaluate()  # the final evaluation, unless the last one was at the last step
    env.close()
    eval_env.close()

    steps, final_mean, final_std = evaluation.records[-1]
    row = {
        "algo": spec.label,
        "env": spec.env,
        "seed": spec.seed,
        "timesteps": spec.timesteps,
        "eval_mean": round(final_mean, 4),
        "eval_std": round(final_std, 4),
        "wall_s": round(wall, 3),
        "fps": round(steps / wall, 2) if wall > 0 else float("nan"),
        "steps": steps,
        "eval_s": round(evaluation.eval_seconds, 3),
        "n_envs": model.n_envs,
        "eval_freq": spec.eval_freq,
        "eval_episodes": spec.eval_episodes,
        "hyperparams": spec.hyperparams,
        "device": spec.device,
        "host": " + ".join(dict.fromkeys(hosts)),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    curve = [
        {
            "algo": spec.label,
            "env": spec.env,
            "seed": spec.seed,
            "budget": spec.timesteps,
            "timesteps": at,
            "eval_mean": round(mean, 4),
            "eval_std": round(std, 4),
        }
        for at, mean, std in evaluation.records
    ]
    return {"row": row, "curve": curve}


def _resume(
    spec: RunSpec, checkpoint: tuple[Path, dict[str, Any]], env: VecEnv, evaluation: PeriodicEvaluation, hosts: list[str]
) -> tuple[BaseAlgorithm, RunClock]:
    """
    Load a run from its checkpoint: the model, the normalisation statistics, the evaluations, the clock and the
    random number generators. The environments start new episodes (reseeded with ``seed + steps``): a
    simulator's state mid-episode is not saved.
    """
    path, state = checkpoint
    model = algorithm_class(spec.algo).load(path / "model.zip", env=env, device=spec.device)
    normalize = _find_vec_normalize(env)
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


def append_rows(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    """
    Append rows to a CSV file, writing the header first when the file is new (parent process only).

    A file that already has a header keeps it: columns it lacks are dropped, columns it has that a row
    lacks are left empty.

    :param path: the CSV file
    :param rows: the rows
    :param fields: the columns of a new file
    """
    header = list(fields)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as file:
            header = next(csv.reader(file), header)
    with open(path, "a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=header, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        file.flush()
        os.fsync(file.fileno())


def finished_runs(path: Path) -> set[tuple[str, str, int, int]]:
    """
    The runs ``learning.csv`` already holds.

    :param path: ``learning.csv``
    :return: their ``(algo, env, seed, timesteps)``
    """
    if not path.exists():
        return set()
    with open(path, newline="") as file:
        return {(row["algo"], row["env"], int(row["seed"]), int(row["timesteps"])) for row in csv.DictReader(file)}


def parse_timesteps(items: Sequence[str]) -> dict[str, int]:
    """
    ``--timesteps`` arguments (``ENV=N``, ``N`` may be written ``2e5``) as a dictionary.

    :param items: the arguments
    :return: budget by environment id
    """
    budgets = {}
    for item in items:
        env_id, _, value = item.partition("=")
        try:
            budget = int(float(value))
        except ValueError:
            budget = 0
        if not env_id or budget <= 0:
            raise argparse.ArgumentTypeError(f"--timesteps takes ENV=N with N > 0, got {item!r}")
        budgets[env_id] = budget
    return budgets


Variant = tuple[str, dict[str, str]]


def parse_variants(items: Sequence[Sequence[str]] | None) -> list[Variant]:
    """
    ``--variant NAME KEY=VALUE ...`` arguments as ``(name, {key: value})`` pairs (values still unparsed).

    :param items: one list per ``--variant``: the name, then the overrides
    :return: the variants, or ``[("", {})]`` (the entries as they are) when there are none
    """
    if not items:
        return [("", {})]
    variants: list[Variant] = []
    for name, *pairs in items:
        if not name or "=" in name or ":" in name:
            raise argparse.ArgumentTypeError(f"--variant takes NAME KEY=VALUE ..., NAME without '=' or ':', got {name!r}")
        if name in {known for known, _ in variants}:
            raise argparse.ArgumentTypeError(f"--variant {name} is given twice")
        overrides = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not key or not sep or not value:
                raise argparse.ArgumentTypeError(f"--variant {name}: overrides are KEY=VALUE, got {pair!r}")
            overrides[key] = value
        variants.append((name, overrides))
    return variants


def action_dims(env_id: str) -> int:
    """
    The number of action dimensions that sb3-contrib's TRPO averages its KL over.

    :param env_id: a Gymnasium environment id
    :return: the size of a ``Box`` or ``MultiBinary`` action; 1 for ``Discrete`` and ``MultiDiscrete``,
        whose KL TRPO takes jointly
    """
    env = gym.make(env_id)
    try:
        space = env.action_space
        return int(np.prod(space.shape)) if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)) else 1
    finally:
        env.close()


def apply_overrides(entry: dict[str, Any], overrides: dict[str, str], env_id: str) -> tuple[dict[str, Any], str]:
    """
    An entry with a variant's overrides: each value is read as YAML, except ``<x>*d``, which is ``x`` times the
    environment's action dimensions.

    :param entry: the hyperparameter entry
    :param overrides: ``{key: value}`` as given on the command line
    :param env_id: the environment (for ``*d``)
    :return: the new entry, and the overrides with their values as used (``"cg_damping=0.6 damped_step_size=True"``)
    """
    changed = dict(entry)
    for key, text in overrides.items():
        if text.endswith("*d"):
            try:
                value: Any = round(float(text[:-2]) * action_dims(env_id), 12)
            except ValueError as error:
                raise ValueError(f"override {key}={text}: '<x>*d' needs a number x") from error
        else:
            value = yaml.safe_load(text)
        changed[key] = value
    return changed, " ".join(f"{key}={changed[key]}" for key in overrides)


def plan_runs(args: argparse.Namespace) -> tuple[list[RunSpec], list[str]]:
    """
    The runs the arguments ask for, in the order they will start (environment, then seed, then algo, then variant).

    :param args: the parsed command line
    :return: the runs, and a message for each run that has no hyperparameters
    """
    budgets = parse_timesteps(args.timesteps)
    variants = parse_variants(getattr(args, "variant", None))
    for env_id in budgets:
        if env_id not in args.envs:
            print(f"note: --timesteps {env_id}=... ignored: {env_id} is not in --envs", flush=True)
    runs, skipped = [], []
    resolved: dict[tuple[str, str], tuple[dict[str, Any], str] | None] = {}
    for env_id in args.envs:
        for algo in args.algos:
            resolved[(algo, env_id)] = resolve_entry(algo, env_id, version_fallback=not args.no_version_fallback)
            if resolved[(algo, env_id)] is None:
                _, file_name = _entries(algo)
                skipped.append(f"skip {algo} on {env_id}: {file_name} has no entry for it")
        for seed in args.seeds:
            for algo in args.algos:
                found = resolved[(algo, env_id)]
                if found is None:
                    continue
                entry, source = found
                if env_id in budgets:
                    timesteps = budgets[env_id]
                elif "n_timesteps" in entry:
                    timesteps = max(1, int(float(entry["n_timesteps"]) * args.budget_scale))
                else:
                    raise ValueError(f"{source} has no n_timesteps: give --timesteps {env_id}=N")
                eval_freq = args.eval_freq or default_eval_freq(timesteps)
                for variant, overrides in variants:
                    changed, described = apply_overrides(entry, overrides, env_id)
                    runs.append(
                        RunSpec(
                            algo,
                            env_id,
                            seed,
                            timesteps,
                            eval_freq,
                            args.eval_episodes,
                            changed,
                            source,
                            args.device,
                            variant,
                            described,
                        )
                    )
    return runs, skipped


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


def _describe(spec: RunSpec) -> str:
    overrides = f" with {spec.overrides}" if spec.overrides else ""
    return f"{spec.label} {spec.env} seed {spec.seed} ({spec.timesteps} steps, {spec.source}{overrides})"


def _record(results_dir: Path, spec: RunSpec, result: dict[str, Any]) -> None:
    # The curve first: a run is finished (and skipped next time) only once its row is in learning.csv
    append_rows(results_dir / CURVES_FILE, result["curve"], CURVE_FIELDS)
    append_rows(results_dir / RUNS_FILE, [result["row"]], RUN_FIELDS)
    remove_checkpoint(spec)
    row = result["row"]
    print(
        f"done {row['algo']} {row['env']} seed {row['seed']}: eval {row['eval_mean']:.1f} +- {row['eval_std']:.1f}, "
        f"{row['wall_s']:.1f} s, {row['fps']:.0f} steps/s",
        flush=True,
    )


def _worker_init() -> None:
    th.set_num_threads(1)


def execute(runs: Sequence[RunSpec], results_dir: Path, jobs: int) -> int:
    """
    Run ``runs`` (``jobs`` at a time) and record each as it finishes.

    :param runs: the runs to do
    :param results_dir: where ``learning.csv`` and ``learning_curves.csv`` are
    :param jobs: how many processes train at once (1: in this process)
    :return: the number of runs that failed
    """
    failures = 0
    if jobs <= 1:
        for spec in runs:
            print(f"start {_describe(spec)}", flush=True)
            try:
                result = run_one(spec)
            except Exception:
                failures += 1
                print(f"FAILED {_describe(spec)}:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
                continue
            _record(results_dir, spec, result)
        return failures

    context = multiprocessing.get_context("spawn")
    if sys.version_info >= (3, 11):
        # A fresh process per run: no state carries over from one run to the next
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init, max_tasks_per_child=1)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init)
    with pool:
        futures: dict[Future, RunSpec] = {}
        try:
            for spec in runs:
                futures[pool.submit(run_one, spec)] = spec
            for future in as_completed(futures):
                spec = futures[future]
                error = future.exception()
                if error is not None:
                    failures += 1
                    details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
                    print(f"FAILED {_describe(spec)}:\n{details}", file=sys.stderr, flush=True)
                    continue
                _record(results_dir, spec, future.result())
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return failures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    :return: the parsed arguments
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].strip() if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    algos = sorted((*OUR_ALGOS, *PEER_ALGOS))
    parser.add_argument(
        "--suite",
        choices=sorted(SUITES),
        default="standard",
        help="default --envs and --algos: 'standard' (MLP policies) or 'recurrent' (LSTM policies on the NoVel tasks)",
    )
    parser.add_argument("--algos", nargs="+", default=None, choices=algos, help="algorithms (default: the suite's)")
    parser.add_argument("--envs", nargs="+", default=None, help="Gymnasium environment ids (default: the suite's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds")
    parser.add_argument(
        "--timesteps",
        nargs="+",
        default=[],
        metavar="ENV=N",
        help="budget of every algorithm on ENV (replaces the entries' n_timesteps and --budget-scale)",
    )
    parser.add_argument(
        "--budget-scale", type=float, default=1.0, help="multiply every entry's n_timesteps (environments without --timesteps)"
    )
    parser.add_argument(
        "--eval-freq", type=int, default=None, help="environment steps between evaluations (default: budget/20)"
    )
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one process each (1: in this process)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the CSV files are")
    parser.add_argument("--device", default="cpu", help="torch device of the models")
    parser.add_argument(
        "--no-version-fallback",
        action="store_true",
        help="skip a peer that has no entry for the environment's own version instead of using an older version's",
    )
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar="NAME KEY=VALUE",
        help="run the algorithms with these overrides of their entries, as '<algo>:NAME' (repeatable; "
        "a value '<x>*d' is x times the action dimensions)",
    )
    parser.add_argument(
        "--checkpoint-freq",
        type=int,
        default=DEFAULT_CHECKPOINT_FREQ,
        help=f"environment steps between checkpoints of a run (under <results-dir>/{CHECKPOINTS_DIR}/, deleted once "
        "the run is recorded); a run started again continues from its checkpoint (0: no checkpoints)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the runs to do and exit")
    args = parser.parse_args(argv)
    suite_envs, suite_algos = SUITES[args.suite]
    args.envs = list(suite_envs) if args.envs is None else args.envs
    args.algos = list(suite_algos) if args.algos is None else args.algos
    if args.budget_scale <= 0:
        parser.error("--budget-scale must be positive")
    if args.eval_freq is not None and args.eval_freq <= 0:
        parser.error("--eval-freq must be positive")
    if args.checkpoint_freq < 0:
        parser.error("--checkpoint-freq must be 0 (no checkpoints) or positive")
    if args.eval_episodes <= 0 or args.jobs <= 0:
        parser.error("--eval-episodes and --jobs must be positive")
    try:
        parse_timesteps(args.timesteps)
        parse_variants(args.variant)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """
    Plan the runs, skip the finished ones, run the rest.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    :return: the exit status: 0, or 1 when a run failed
    """
    args = parse_args(argv)
    runs, skipped = plan_runs(args)
    for message in skipped:
        print(message, flush=True)
    for algo, env_id, source in sorted({(spec.algo, spec.env, spec.source) for spec in runs}):
        if not source.endswith(f"[{env_id}]"):
            print(f"note: {algo} on {env_id} uses {source} (the file has no {env_id} entry)", flush=True)
    results_dir: Path = args.results_dir
    done = finished_runs(results_dir / RUNS_FILE)
    todo = [with_checkpoints(spec, results_dir, args.checkpoint_freq) for spec in runs if spec.key not in done]
    for spec in runs:
        if spec.key in done:
            print(f"skip {_describe(spec)}: already in {RUNS_FILE}", flush=True)
    print(f"{len(todo)} runs to do, {len(runs) - len(todo)} already done, {len(skipped)} algo/env pairs skipped", flush=True)
    if args.dry_run:
        for spec in todo:
            checkpoint = load_checkpoint(spec)
            resumes = "" if checkpoint is None else f", resumes from {checkpoint[1]['num_timesteps']} steps"
            print(f"  {_describe(spec)}, evaluation every {spec.eval_freq} steps{resumes}")
        return 0
    if not todo:
        return 0
    results_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        failures = execute(todo, results_dir, args.jobs)
    except KeyboardInterrupt:
        print("interrupted: the finished runs are recorded, the others will run next time", file=sys.stderr, flush=True)
        return 130
    print(f"{len(todo) - failures} runs finished, {failures} failed, in {time.perf_counter() - start:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
