"""
Cost benchmark: CPU seconds per 100k environment steps of a whole training run, split into the rollouts
(SB3's ``collect_rollouts``) and ``train()``, against the cost of the environments alone.

What a user pays for is the whole run: the rollouts plus the updates. For each environment (default the
MuJoCo tasks HalfCheetah-v5, Hopper-v5, Walker2d-v5) this times, for ``--steps`` environment steps each:

- ``npg``, ``klppo``: the entries this package ships (``sb3_npg/zoo/hyperparams/<algo>.yml``);
- ``trpo`` (sb3-contrib), ``ppo`` (Stable-Baselines3): the installed rl-zoo3's entries (the newest older
  version of the environment when the zoo has none for it: ``HalfCheetah-v4`` for ``HalfCheetah-v5``);
- ``trpo:same-rollout``: TRPO with the zoo's entry, but the ``n_envs``, ``n_steps`` and ``normalize`` of the
  shipped NPG entry (and NPG's ``batch_size`` when TRPO's does not divide the new rollout), so that NPG's
  ``train()`` and TRPO's are compared on rollouts of the same size;
- ``floor:<stack>``: the environment-only floor, the very VecEnv stack an entry builds (same ``n_envs``, same
  ``VecNormalize`` wrapping, same class holding the copies) stepping pre-drawn random actions without any policy,
  one floor per distinct stack of the runs on that environment (``floor:2envs+norm+sb3``: 2 copies in SB3's
  ``DummyVecEnv`` under ``VecNormalize``).

Each runs on the stack its own command line builds: ours in the ``InfoCopyDummyVecEnv`` of ``sb3-npg train``
(:mod:`sb3_npg.common.vec_env`: SB3's ``DummyVecEnv`` with a cheaper copy of the infos), the peers in SB3's
``DummyVecEnv``, as ``rl_zoo3 train`` builds them (``+sb3`` in the stack's name); ``trpo:same-rollout`` takes NPG's
whole stack.

Entries are looked up, and environments and models built, with the learning benchmark's modules
(``common.entries``, ``common.algos``), exactly as the learning benchmark does. Every environment is measured
in a fresh process (``torch.set_num_threads(1)``, ``device="cpu"``), alternately in ``--rounds`` rounds: round 1
runs every configuration once (the floors, then npg, trpo, trpo:same-rollout, klppo, ppo), then round 2, and so on.

Times are process CPU time (``time.process_time()``), not wall time. ``total_s`` is the CPU time of
``learn()`` (model construction excluded, no evaluation); ``rollout_s`` accumulates the CPU time between
each ``_on_rollout_start`` and ``_on_rollout_end`` of a callback (the environment steps, the policy's
forward passes, the buffer and the advantages); ``train_s = total_s - rollout_s`` (``train()``, plus
``learn()``'s small setup and logging). The algorithms round ``--steps`` up to whole rollouts; ``steps`` is
what they took and every time is also normalised per 100k steps.

Each finished (environment, configuration, round) is appended at once to ``<results-dir>/cost.csv``
(default ``benchmarks/results/cost``); one already there (same ``--steps``) is skipped, so an interrupted
benchmark resumes where it stopped and raising ``--rounds`` adds rounds. ``<results-dir>/cost_table.md`` is
then written from the CSV (and printed): the cheapest round of each configuration (the one with the least
total) with its split, the median over rounds, steps per CPU-second, each run's rollout cost against its
floor, and the headline ratios (NPG against TRPO, NPG's ``train()`` against ``trpo:same-rollout``'s per
update, KLPPO against PPO).

    python benchmarks/cost.py                                   # the three MuJoCo tasks, 20480 steps, 3 rounds
    python benchmarks/cost.py --envs HalfCheetah-v5 --steps 4096 --rounds 1 --results-dir /tmp/cost_try
    python benchmarks/cost.py --report                          # only rewrite cost_table.md from cost.csv
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from common.algos import algorithm_class
from common.algos import vec_env_class as command_vec_env_class
from common.cli import add_variant_argument, make_parser, parse_variants
from common.entries import apply_overrides, resolve_entry
from common.results import RESULTS_DIR as ALL_RESULTS_DIR
from common.results import append_rows, host_description, read_rows, utc_now
from sb3_npg.common.vec_env import InfoCopyDummyVecEnv
from sb3_npg.zoo import config
from sb3_npg.zoo.algos import ALGOS

RESULTS_DIR = ALL_RESULTS_DIR / "cost"
CSV_FILE = "cost.csv"
TABLE_FILE = "cost_table.md"
ENVS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
FLOOR = "floor"
SAME_ROLLOUT = "trpo:same-rollout"  # TRPO, NPG's peer, with NPG's rollout
# Ours with MLP policies: the configurations a --variant applies to
OUR_ALGOS = tuple(name for name, spec in ALGOS.items() if not spec.recurrent)


def _round_order() -> tuple[str, ...]:
    """The configurations in the order a round runs them: the floors, then each of ours and its peer."""
    labels = [FLOOR]
    for algo in OUR_ALGOS:
        labels += [algo, ALGOS[algo].peer, *([SAME_ROLLOUT] if algo == "npg" else [])]
    return tuple(labels)


CONFIGS = _round_order()  # floor, npg, trpo, trpo:same-rollout, klppo, ppo
DEFAULT_STEPS = 20_480
DEFAULT_ROUNDS = 3
PER = 100_000
# Random actions of the floor are drawn this many steps (of every copy) at a time, outside the timed loop
FLOOR_CHUNK = 1024

FIELDS = (
    "env",
    "algo",
    "round",
    "budget",
    "steps",
    "n_envs",
    "n_steps",
    "updates",
    "stack",
    "rollout_s",
    "train_s",
    "total_s",
    "seed",
    "hyperparams",
    "host",
    "finished",
)


@dataclass(frozen=True)
class Measurement:
    """One configuration on one environment: what a round times."""

    env: str
    label: str  # "npg", "trpo:same-rollout", "floor:2envs+norm", ...
    algo: str  # the algorithm's zoo name, or "floor"
    entry: dict[str, Any] = field(hash=False, compare=False)
    hyperparams: str = ""
    stack: str = ""
    vec_env_cls: type[DummyVecEnv] = field(default=InfoCopyDummyVecEnv, hash=False, compare=False)

    def key(self, round_: int, budget: int) -> tuple[str, str, int, int]:
        """What identifies a finished measurement in ``cost.csv``."""
        return (self.env, self.label, round_, budget)


def _default(algo: str, name: str) -> Any:
    """The default of an algorithm's constructor argument (what an entry without ``name`` gets)."""
    return inspect.signature(algorithm_class(algo)).parameters[name].default


def vec_env_class(algo: str, label: str) -> type[DummyVecEnv]:
    """
    The class that holds a run's copies: SB3's ``DummyVecEnv`` for a peer (as ``rl_zoo3 train`` builds it),
    :class:`~sb3_npg.common.vec_env.InfoCopyDummyVecEnv` for ours (as ``sb3-npg train`` does) and for
    ``trpo:same-rollout`` (NPG's stack).

    :param algo: the algorithm's zoo name
    :param label: the configuration's label
    """
    return InfoCopyDummyVecEnv if label == SAME_ROLLOUT else command_vec_env_class(algo)


def env_stack(entry: dict[str, Any], vec_env_cls: type[DummyVecEnv] = InfoCopyDummyVecEnv) -> str:
    """
    A short name of the VecEnv stack an entry builds: its copies, its ``VecNormalize`` and any other wrapping, and
    ``+sb3`` when SB3's ``DummyVecEnv`` holds the copies.

    :param entry: a zoo entry
    :param vec_env_cls: the class that holds the copies
    :return: e.g. ``"16envs+norm"``, ``"2envs+norm+sb3"``, ``"8envs"``, ``"1env+norm(norm_reward=False)"``
    """
    n_envs = int(entry.get("n_envs", 1))
    name = f"{n_envs}env" + ("s" if n_envs > 1 else "")
    # How the zoo reads `normalize`, as make_env_from_hyperparams does; gamma changes nothing of the cost
    normalize = config._normalize_kwargs(entry)
    if normalize is not None:
        normalize.pop("gamma", None)
        options = ",".join(f"{key}={value}" for key, value in sorted(normalize.items()))
        name += f"+norm({options})" if options else "+norm"
    for key in ("env_kwargs", "env_wrapper", "vec_env_wrapper", "frame_stack"):
        if entry.get(key):
            name += f"+{key}={entry[key]}"
    if vec_env_cls is DummyVecEnv:
        name += "+sb3"
    elif vec_env_cls is not InfoCopyDummyVecEnv:
        name += f"+{vec_env_cls.__name__}"
    return name


def same_rollout_entry(trpo: tuple[dict[str, Any], str], npg: tuple[dict[str, Any], str]) -> tuple[dict[str, Any], str]:
    """
    TRPO's entry with the rollout of NPG's: its ``n_envs``, ``n_steps`` and ``normalize``; TRPO's ``batch_size``
    if it divides the new rollout (``n_steps * n_envs``), else NPG's.

    :param trpo: TRPO's entry and where it comes from
    :param npg: NPG's entry and where it comes from
    :return: the entry, and its ``hyperparams`` description
    """
    (trpo_entry, trpo_source), (npg_entry, npg_source) = trpo, npg
    entry = dict(trpo_entry)
    entry["n_envs"] = int(npg_entry.get("n_envs", 1))
    entry["n_steps"] = int(npg_entry.get("n_steps", _default("npg", "n_steps")))
    entry.pop("normalize", None)
    if "normalize" in npg_entry:
        entry["normalize"] = npg_entry["normalize"]
    changed = [f"{key}={entry.get(key, False)}" for key in ("n_envs", "n_steps", "normalize")]
    rollout = entry["n_envs"] * entry["n_steps"]
    if rollout % int(entry.get("batch_size", _default("trpo", "batch_size"))):
        entry["batch_size"] = int(npg_entry.get("batch_size", _default("npg", "batch_size")))
        changed.append(f"batch_size={entry['batch_size']}")
    return entry, f"{trpo_source} with {' '.join(changed)} of {npg_source}"


def plan_env(
    env_id: str, configs: Sequence[str], variants: Sequence[tuple[str, dict[str, str]]] = ()
) -> tuple[list[Measurement], list[str]]:
    """
    What a round on ``env_id`` measures, in order: the floors first, then the configurations of ``CONFIGS``, then
    the variants of our algorithms.

    :param env_id: the environment
    :param configs: the configurations asked for (``CONFIGS`` names)
    :param variants: ``(name, overrides)`` pairs (``learning.py``'s ``--variant``): each of ``npg`` and ``klppo`` in
        ``configs`` is measured again with its entry changed by the overrides, as ``<algo>:<name>``
    :return: the measurements, and a message for each configuration that has no entry for the environment
    """
    runs: list[Measurement] = []
    skipped: list[str] = []
    resolved: dict[str, tuple[dict[str, Any], str] | None] = {}

    def entry_of(algo: str) -> tuple[dict[str, Any], str] | None:
        if algo not in resolved:
            resolved[algo] = resolve_entry(algo, env_id)
        return resolved[algo]

    for label in CONFIGS:
        if label == FLOOR or label not in configs:
            continue
        if label == SAME_ROLLOUT:
            trpo, npg = entry_of("trpo"), entry_of("npg")
            found = None if trpo is None or npg is None else same_rollout_entry(trpo, npg)
            algo = "trpo"
        else:
            found, algo = entry_of(label), label
        if found is None:
            skipped.append(f"skip {label} on {env_id}: no entry for it")
            continue
        entry, source = found
        vec_env = vec_env_class(algo, label)
        runs.append(Measurement(env_id, label, algo, entry, source, env_stack(entry, vec_env), vec_env))
    for name, overrides in variants:
        for algo in OUR_ALGOS:
            found = entry_of(algo) if algo in configs else None
            if found is None:
                continue
            entry, changed = apply_overrides(found[0], overrides, env_id)
            runs.append(Measurement(env_id, f"{algo}:{name}", algo, entry, f"{found[1]} with {changed}", env_stack(entry)))
    if FLOOR not in configs:
        return runs, skipped
    # One floor per distinct stack of the runs (of every configuration when only the floor is asked for)
    stacks = runs
    if not stacks:
        stacks, _ = plan_env(env_id, [label for label in CONFIGS if label != FLOOR])
    floors: dict[str, Measurement] = {}
    for run in stacks:
        if run.stack not in floors:
            description = f"random actions on the VecEnv stack of {run.hyperparams}"
            floor = Measurement(env_id, f"{FLOOR}:{run.stack}", FLOOR, run.entry, description, run.stack, run.vec_env_cls)
            floors[run.stack] = floor
    return [*floors.values(), *runs], skipped


def pending(
    measurements: Sequence[Measurement], rounds: int, budget: int, done: set[tuple[str, str, int, int]]
) -> list[tuple[int, Measurement]]:
    """The (round, measurement) pairs not yet in ``cost.csv``, round by round."""
    return [
        (round_, measurement)
        for round_ in range(1, rounds + 1)
        for measurement in measurements
        if measurement.key(round_, budget) not in done
    ]


def finished(path: Path) -> set[tuple[str, str, int, int]]:
    """The (env, algo, round, budget) of the measurements ``cost.csv`` already holds."""
    return {(row["env"], row["algo"], int(row["round"]), int(row["budget"])) for row in read_rows(path)}


class RolloutClock(BaseCallback):
    """CPU time spent in the rollouts: from each ``_on_rollout_start`` to its ``_on_rollout_end``."""

    def __init__(self) -> None:
        super().__init__(verbose=0)
        self.seconds = 0.0
        self.rollouts = 0
        self._start = 0.0

    def _on_rollout_start(self) -> None:
        self._start = time.process_time()

    def _on_rollout_end(self) -> None:
        self.seconds += time.process_time() - self._start
        self.rollouts += 1

    def _on_step(self) -> bool:
        return True


def random_actions(space: gym.Space, n_steps: int, n_envs: int) -> np.ndarray:
    """
    ``n_steps`` batches of random actions for ``n_envs`` copies, drawn at once.

    :param space: the action space of one copy (seeded)
    :param n_steps: how many steps
    :param n_envs: how many copies
    :return: an array of shape ``(n_steps, n_envs, *space.shape)``
    """
    if not isinstance(space, (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        raise ValueError(f"the floor draws Box, Discrete, MultiDiscrete or MultiBinary actions, not {space}")
    batched = gym.vector.utils.batch_space(space, n_steps * n_envs)
    batched.seed(int(space.np_random.integers(2**31)))
    return np.asarray(batched.sample()).reshape((n_steps, n_envs, *(space.shape or ())))


def measure_floor(measurement: Measurement, budget: int, seed: int) -> dict[str, Any]:
    """
    Step the measurement's VecEnv stack with random actions, ``budget`` steps in all (rounded up to whole
    steps of every copy), timing only the ``step()`` calls.

    :return: the row's measured fields
    """
    env = config.make_env_from_hyperparams(measurement.entry, measurement.env, seed=seed, vec_env_cls=measurement.vec_env_cls)
    n_envs = env.num_envs
    per_env = -(-budget // n_envs)
    env.action_space.seed(seed)
    env.reset()
    seconds, stepped = 0.0, 0
    while stepped < per_env:
        actions = random_actions(env.action_space, min(FLOOR_CHUNK, per_env - stepped), n_envs)
        start = time.process_time()
        for action in actions:
            env.step(action)
        seconds += time.process_time() - start
        stepped += len(actions)
    env.close()
    return {"steps": per_env * n_envs, "n_envs": n_envs, "n_steps": "", "updates": 0, "rollout_s": seconds, "total_s": seconds}


def measure_run(measurement: Measurement, budget: int, seed: int) -> dict[str, Any]:
    """
    Train the measurement's model for ``budget`` steps (whole rollouts), timing ``learn()`` and its rollouts.

    :return: the row's measured fields
    """
    entry = measurement.entry
    env: VecEnv = config.make_env_from_hyperparams(entry, measurement.env, seed=seed, vec_env_cls=measurement.vec_env_cls)
    kwargs = config.constructor_kwargs(entry)
    kwargs.update(verbose=0, device="cpu")
    model = algorithm_class(measurement.algo)(entry.get("policy", "MlpPolicy"), env, seed=seed, **kwargs)
    clock = RolloutClock()
    start = time.process_time()
    model.learn(total_timesteps=budget, callback=clock)
    total = time.process_time() - start
    env.close()
    return {
        "steps": int(model.num_timesteps),
        "n_envs": model.n_envs,
        "n_steps": int(model.n_steps),  # type: ignore[attr-defined]
        "updates": clock.rollouts,
        "rollout_s": clock.seconds,
        "total_s": total,
    }


def measure(measurement: Measurement, round_: int, budget: int, seed: int) -> dict[str, Any]:
    """
    One measurement, as its ``cost.csv`` row.

    :param measurement: what to measure
    :param round_: the round it belongs to
    :param budget: ``--steps``
    :param seed: seed of the environments and the model
    :return: the row
    """
    if measurement.algo == FLOOR:
        result = measure_floor(measurement, budget, seed)
    else:
        result = measure_run(measurement, budget, seed)
    rollout, total = round(result.pop("rollout_s"), 6), round(result.pop("total_s"), 6)
    return {
        "env": measurement.env,
        "algo": measurement.label,
        "round": round_,
        "budget": budget,
        **result,
        "stack": measurement.stack,
        "rollout_s": rollout,
        "train_s": round(total - rollout, 6),
        "total_s": total,
        "seed": seed,
        "hyperparams": measurement.hyperparams,
        "host": host_description(),
        "finished": utc_now(),
    }


def measure_env(args: argparse.Namespace) -> int:
    """
    The worker: measure one environment's pending measurements, round by round, appending each row as it finishes.

    :param args: the command line (``--envs`` holds the one environment)
    :return: the exit status: 0, or 1 when a measurement failed
    """
    th.set_num_threads(1)
    (env_id,) = args.envs
    path = args.results_dir / CSV_FILE
    measurements, _ = plan_env(env_id, args.algos, args.variant)
    failures = 0
    for round_, measurement in pending(measurements, args.rounds, args.steps, finished(path)):
        try:
            row = measure(measurement, round_, args.steps, args.seed)
        except Exception:
            failures += 1
            print(
                f"FAILED {env_id} {measurement.label} round {round_}:\n{traceback.format_exc()}", file=sys.stderr, flush=True
            )
            continue
        args.results_dir.mkdir(parents=True, exist_ok=True)
        append_rows(path, [row], FIELDS)
        print(
            f"done {env_id} {row['algo']} round {round_}: {row['steps']} steps, rollouts {row['rollout_s']:.2f} + "
            f"train {row['train_s']:.2f} = {row['total_s']:.2f} CPU s",
            flush=True,
        )
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------------------- report


@dataclass
class Summary:
    """One configuration's rounds in one section of the table, per 100k steps."""

    label: str
    n_envs: int
    n_steps: str
    steps: int
    updates: int
    stack: str
    hyperparams: str
    rounds: int
    best: tuple[float, float, float]  # rollout, train, total of the round with the least total
    median: tuple[float, float, float]  # the median of each over the rounds

    @property
    def rollout_size(self) -> int:
        """Samples per update (``n_steps * n_envs``)."""
        return self.steps // self.updates if self.updates else 0

    def train_per_update(self, which: str) -> float:
        """CPU seconds of ``train()`` per update (per rollout batch), of the cheapest round or the median."""
        train = (self.best if which == "best" else self.median)[1]
        return train * self.rollout_size / PER


def _per_100k(row: dict[str, str]) -> tuple[float, float, float]:
    scale = PER / int(row["steps"])
    return (float(row["rollout_s"]) * scale, float(row["train_s"]) * scale, float(row["total_s"]) * scale)


def summarise(rows: Sequence[dict[str, str]]) -> dict[tuple[str, int, str], dict[str, Summary]]:
    """
    The rows of ``cost.csv`` by section (environment, budget, host), then by configuration.

    :param rows: the rows
    :return: ``{(env, budget, host): {label: summary}}``, in the CSV's order of first appearance
    """
    groups: dict[tuple[str, int, str], dict[str, list[dict[str, str]]]] = {}
    for row in rows:
        groups.setdefault((row["env"], int(row["budget"]), row["host"]), {}).setdefault(row["algo"], []).append(row)
    sections: dict[tuple[str, int, str], dict[str, Summary]] = {}
    for key, by_label in groups.items():
        summaries = {}
        for label, label_rows in by_label.items():
            costs = [_per_100k(row) for row in label_rows]
            cheapest = min(range(len(costs)), key=lambda i: costs[i][2])
            row = label_rows[cheapest]
            median = tuple(statistics.median(cost[i] for cost in costs) for i in range(3))
            summaries[label] = Summary(
                label,
                int(row["n_envs"]),
                row["n_steps"],
                int(row["steps"]),
                int(row["updates"]),
                row["stack"],
                row["hyperparams"],
                len(label_rows),
                costs[cheapest],
                (median[0], median[1], median[2]),
            )
        sections[key] = dict(sorted(summaries.items(), key=lambda item: _order(item[0])))
    return sections


def _order(label: str) -> tuple[int, str]:
    """Sort key of the table's rows: the order of ``CONFIGS`` (the floors as they were measured), others last."""
    base = FLOOR if label.startswith(f"{FLOOR}:") else label
    return (CONFIGS.index(base), "") if base in CONFIGS else (len(CONFIGS), label)


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def _pair(best: float, median: float, text: Any = _seconds) -> str:
    return f"{text(best)} ({text(median)})"


def floor_ratios(summary: Summary, floors: dict[str, Summary]) -> tuple[float, float] | None:
    """A run's rollout cost over the cost of its floor (same stack): of the cheapest rounds, of the medians."""
    floor = floors.get(f"{FLOOR}:{summary.stack}")
    if floor is None or summary.label == floor.label or floor.best[2] <= 0 or floor.median[2] <= 0:
        return None
    return summary.best[0] / floor.best[2], summary.median[0] / floor.median[2]


def headlines(summaries: dict[str, Summary]) -> list[str]:
    """The headline ratios of a section, as Markdown list items."""
    lines = []
    npg, trpo, same, klppo, ppo = (summaries.get(label) for label in ("npg", "trpo", SAME_ROLLOUT, "klppo", "ppo"))
    if npg is not None and trpo is not None:
        lines.append(
            "- NPG (shipped) / TRPO (zoo), steps per CPU-second (above 1: NPG is cheaper per step): "
            + _pair(trpo.best[2] / npg.best[2], trpo.median[2] / npg.median[2], _ratio)
        )
    if npg is not None and same is not None and npg.updates and same.updates:
        npg_best, same_best = npg.train_per_update("best"), same.train_per_update("best")
        npg_median, same_median = npg.train_per_update("median"), same.train_per_update("median")
        if npg.rollout_size == same.rollout_size:
            per = f"a rollout batch of {npg.rollout_size} samples for both, so also per 100k steps"
        else:
            per = f"rollout batches of {npg.rollout_size} (NPG) and {same.rollout_size} (TRPO) samples"
        lines.append(
            f"- NPG train() / {SAME_ROLLOUT} train(), per update ({per}; below 1: NPG's update is cheaper): "
            + _pair(npg_best / same_best, npg_median / same_median, _ratio)
            + f"; CPU s per update {_seconds(npg_best)} / {_seconds(same_best)}"
            + f" ({_seconds(npg_median)} / {_seconds(same_median)})"
        )
    if klppo is not None and ppo is not None:
        lines.append(
            "- KLPPO (shipped) / PPO (zoo), total CPU s per 100k steps (below 1: KLPPO is cheaper): "
            + _pair(klppo.best[2] / ppo.best[2], klppo.median[2] / ppo.median[2], _ratio)
        )
    for label, summary in summaries.items():
        algo, _, name = label.partition(":")
        peer = summaries.get(ALGOS[algo].peer) if name and algo in OUR_ALGOS else None
        if peer is not None:
            lines.append(
                f"- {label} / {peer.label} (zoo), total CPU s per 100k steps (below 1: {label} is cheaper): "
                + _pair(summary.best[2] / peer.best[2], summary.median[2] / peer.median[2], _ratio)
            )
    floors = {label: summary for label, summary in summaries.items() if label.startswith(f"{FLOOR}:")}
    ratios = []
    for label, summary in summaries.items():
        ratio = floor_ratios(summary, floors)
        if ratio is not None:
            ratios.append(f"{label} {_pair(*ratio, _ratio)} of {FLOOR}:{summary.stack}")
    if ratios:
        lines.append("- rollouts / environment-only floor (same n_envs and normalisation): " + ", ".join(ratios))
    return lines


def report(rows: Sequence[dict[str, str]]) -> str:
    """
    The Markdown table of ``cost.csv``.

    :param rows: the rows of ``cost.csv``
    :return: the contents of ``cost_table.md``
    """
    lines = [
        "# Cost benchmark",
        "",
        "CPU seconds (`time.process_time()`, one torch thread, `device=cpu`) per 100k environment steps of a whole",
        "training run. `rollout`: SB3's `collect_rollouts`, from `_on_rollout_start` to `_on_rollout_end`; `train`:",
        "`learn()` less the rollouts (`train()`, and `learn()`'s setup and logging); `total`: `learn()` (model",
        "construction excluded, no evaluation). Each cell is the cheapest round (the least total, with its split),",
        "with the median over the rounds in parentheses. `floor:<stack>` is the environment alone: the VecEnv stack",
        "of the runs (copies, `VecNormalize`) stepping random actions, no policy; `rollout / floor` is a run's",
        "rollout cost over the floor of its own stack. Written by `benchmarks/cost.py` from `cost.csv`.",
    ]
    if not rows:
        return "\n".join([*lines, "", "No measurements yet.", ""])
    for (env_id, budget, host), summaries in summarise(rows).items():
        rounds = max(summary.rounds for summary in summaries.values())
        lines += [
            "",
            f"## {env_id}",
            "",
            f"`--steps {budget}` (each run rounds it up to whole rollouts: `steps`), {rounds} round{'s' * (rounds > 1)}, "
            f"host {host}: `python benchmarks/cost.py --envs {env_id} --steps {budget} --rounds {rounds}`",
            "",
            "| config | n_envs x n_steps | steps | rounds | rollout s/100k | train s/100k | total s/100k | "
            "steps per CPU-s | rollout / floor | hyperparams |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        floors = {label: summary for label, summary in summaries.items() if label.startswith(f"{FLOOR}:")}
        for label, summary in summaries.items():
            is_floor = label in floors
            ratio = floor_ratios(summary, floors)
            shape = f"{summary.n_envs}" if is_floor else f"{summary.n_envs} x {summary.n_steps}"
            lines.append(
                f"| {label} | {shape} | {summary.steps} | {summary.rounds} | "
                f"{_pair(summary.best[0], summary.median[0])} | "
                f"{'-' if is_floor else _pair(summary.best[1], summary.median[1])} | "
                f"{_pair(summary.best[2], summary.median[2])} | "
                f"{_pair(PER / summary.best[2], PER / summary.median[2], lambda x: f'{x:.0f}')} | "
                f"{'-' if ratio is None else _pair(*ratio, _ratio)} | {summary.hyperparams} |"
            )
        headline = headlines(summaries)
        if headline:
            lines += ["", "Headline ratios (cheapest rounds; of the medians in parentheses):", "", *headline]
    return "\n".join(lines) + "\n"


def write_report(results_dir: Path) -> str:
    """Write ``cost_table.md`` from ``cost.csv`` and return it."""
    table = report(read_rows(results_dir / CSV_FILE))
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / TABLE_FILE).write_text(table)
    return table


# ------------------------------------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    :return: the parsed arguments
    """
    parser = make_parser(__doc__)
    parser.add_argument("--envs", nargs="+", default=list(ENVS), help="Gymnasium environment ids")
    parser.add_argument(
        "--algos", nargs="+", default=list(CONFIGS), choices=CONFIGS, help="configurations ('floor': the environment alone)"
    )
    parser.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help="environment steps of every run (rounded up to whole rollouts)"
    )
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="times every configuration is measured, in turn")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"where {CSV_FILE} and {TABLE_FILE} are")
    parser.add_argument("--seed", type=int, default=0, help="seed of the environments and the models (every round)")
    add_variant_argument(
        parser,
        help="also measure npg and klppo with their entries changed by the overrides, as <algo>:NAME (as learning.py's)",
    )
    parser.add_argument("--report", action="store_true", help=f"only rewrite {TABLE_FILE} from {CSV_FILE}")
    # Internal: measure the one environment of --envs in this process (each environment gets a fresh one)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.variant = [(name, overrides) for name, overrides in parse_variants(args.variant) if name]
    if args.steps <= 0 or args.rounds <= 0:
        parser.error("--steps and --rounds must be positive")
    if args.worker and len(args.envs) != 1:
        parser.error("--worker measures one environment")
    return args


def worker_command(args: argparse.Namespace, env_id: str) -> list[str]:
    """The command line of the fresh process that measures ``env_id``."""
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--envs",
        env_id,
        "--algos",
        *args.algos,
        "--steps",
        str(args.steps),
        "--rounds",
        str(args.rounds),
        "--results-dir",
        str(args.results_dir),
        "--seed",
        str(args.seed),
        *(
            argument
            for name, overrides in args.variant
            for argument in ("--variant", name, *(f"{key}={value}" for key, value in overrides.items()))
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """
    Measure every environment in its own process, skipping what ``cost.csv`` holds, then write the table.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    :return: the exit status: 0, or 1 when a measurement failed
    """
    args = parse_args(argv)
    if args.worker:
        return measure_env(args)
    results_dir: Path = args.results_dir
    failures = 0
    if not args.report:
        done = finished(results_dir / CSV_FILE)
        for env_id in args.envs:
            measurements, skipped = plan_env(env_id, args.algos, args.variant)
            for message in skipped:
                print(message, flush=True)
            todo = pending(measurements, args.rounds, args.steps, done)
            total = len(measurements) * args.rounds
            print(f"{env_id}: {len(todo)} measurements to do, {total - len(todo)} already in {CSV_FILE}", flush=True)
            if not todo:
                continue
            try:
                status = subprocess.run(worker_command(args, env_id), check=False).returncode
            except KeyboardInterrupt:
                print("interrupted: the finished measurements are recorded, the others run next time", file=sys.stderr)
                return 130
            if status != 0:
                failures += 1
                print(f"FAILED {env_id}: its process exited with status {status}", file=sys.stderr, flush=True)
    print(write_report(results_dir), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
