"""
The planner of the learning benchmark: which runs ``learning.py``'s command line asks for.

- :class:`RunSpec`: one run (algorithm, environment, seed, budget, evaluation, its entry and where it comes from, its
  variant and its checkpoints), and :func:`describe`;
- :func:`plan_runs`: every run of the command line, each with its entry (:mod:`common.entries`), its budget and its
  evaluation interval, and a message for each algorithm and environment without an entry.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from common.cli import parse_timesteps, parse_variants
from common.entries import all_entries, apply_overrides, resolve_entry
from common.evaluation import default_eval_freq


@dataclass(frozen=True)
class RunSpec:
    """
    One run: what to train, for how long, with which hyperparameters, and how to evaluate it.

    :param algo: the algorithm's zoo name
    :param env: the environment id
    :param seed: the seed of the model and of the training environments (the evaluation's is offset)
    :param timesteps: the budget
    :param eval_freq: environment steps between evaluations
    :param eval_episodes: episodes per evaluation
    :param entry: the hyperparameters (zoo format), a variant's overrides applied
    :param source: where the entry comes from (``"rl_zoo3 trpo.yml[HalfCheetah-v4]"``)
    :param device: the torch device of the model
    :param variant: the name of the ``--variant``, empty for the entry as it is
    :param overrides: the variant's overrides as used (``"cg_damping=0.6 damped_step_size=True"``)
    :param checkpoint_freq: environment steps between checkpoints (0: none)
    :param checkpoint_dir: the run's checkpoint folder (empty: none, not even to resume from)
    """

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


def describe(spec: RunSpec) -> str:
    """
    A run, as the messages name it.

    :param spec: the run
    :return: ``"<label> <env> seed <seed> (<budget> steps, <source>[ with <overrides>])"``
    """
    overrides = f" with {spec.overrides}" if spec.overrides else ""
    return f"{spec.label} {spec.env} seed {spec.seed} ({spec.timesteps} steps, {spec.source}{overrides})"


def plan_runs(args: argparse.Namespace) -> tuple[list[RunSpec], list[str]]:
    """
    The runs the arguments ask for, in the order they will start (environment, then seed, then algo, then variant).

    :param args: the parsed command line of ``learning.py``
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
                _, file_name = all_entries(algo)
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
