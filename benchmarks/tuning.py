"""
Tuning studies of the shipped entries, run with this package's own tool (``sb3-npg train -optimize``).

One study per algorithm and environment, in an SQLite file under ``--results-dir`` (default
``benchmarks/results/tuning/``): ``<algo>_<env>.db``, study ``<algo>-<env>-<space>-<budget>k``. A new study of
the ``update`` space gets the shipped entry's own values as its first trial (user attribute ``entry``), so
the entry is measured with the same budget and evaluation as every candidate. Then the script runs

    sb3-npg train --algo ALGO --env ENV -n BUDGET -optimize --search-space SPACE --max-total-trials N \
        --sampler tpe --pruner median --n-startup-trials 5 --n-evaluations 5 --storage sqlite:///... --study-name ...

(printed before it starts, and kept as the study's ``command`` attribute, with paths under the working folder
relative to it, so that a committed study names no machine's folders). Stopped at any point, the same command
carries on: the study is in the file, and the trial of a killed worker is failed and retried (the storage's
heartbeat). ``--report`` writes ``studies.md``: for each study the trials, the entry's score, the best trial and
its parameters.

    python benchmarks/tuning.py --algo klppo --env HalfCheetah-v5 --trials 20
    python benchmarks/tuning.py --report
"""

from __future__ import annotations

import argparse
import inspect
import os
import shlex
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import optuna

from sb3_npg.zoo import config
from sb3_npg.zoo.algos import ALGOS as ALGO_SPECS
from sb3_npg.zoo.hyperparams_opt import SEARCH_SPACES
from sb3_npg.zoo.tuning import SEARCH_SPACE_NAMES

RESULTS_DIR = Path(__file__).parent / "results" / "tuning"
REPORT = "studies.md"
ENTRY_ATTR = "entry"  # user attribute of the trial that runs the shipped entry
ALGOS = tuple(name for name, spec in ALGO_SPECS.items() if not spec.recurrent)  # the shipped MLP entries: npg, klppo
# The zoo's flags of every study: TPE after 5 random trials, median pruning on 5 evaluations of 5 episodes
OPTIMIZE_FLAGS = ["--sampler", "tpe", "--pruner", "median", "--n-startup-trials", "5", "--n-evaluations", "5"]
OPTIMIZE_FLAGS += ["--eval-episodes", "5", "--n-jobs", "1", "--no-optim-plots"]


def study_name(algo: str, env_id: str, search_space: str, budget: int) -> str:
    """The name of the study of ``algo`` on ``env_id`` (``npg-HalfCheetah-v5-update-100k``)."""
    steps = f"{budget // 1000}k" if budget % 1000 == 0 else str(budget)
    return f"{algo}-{env_id}-{search_space}-{steps}"


def storage_url(results_dir: Path, algo: str, env_id: str) -> str:
    """The SQLite URL of the studies of ``algo`` on ``env_id``."""
    return f"sqlite:///{results_dir / f'{algo}_{env_id}.db'}"


def _n_actions(env_id: str) -> int:
    """The ``n_actions`` the zoo hands to a sampler: the size of a continuous action, else 1."""
    space = gym.make(env_id).action_space
    return int(np.prod(space.shape)) if isinstance(space, gym.spaces.Box) else 1


def entry_params(algo: str, env_id: str, search_space: str = "update") -> tuple[dict[str, Any] | None, str]:
    """
    The shipped entry's values of the parameters a trial of ``search_space`` draws, as raw trial parameters.

    A parameter the entry leaves out takes the algorithm's default. The entry cannot be a trial when one of
    its values is a schedule or lies outside the search space.

    :param algo: ``"npg"`` or ``"klppo"``
    :param env_id: the environment
    :param search_space: only ``"update"`` (the full space's raw parameters, e.g. ``n_steps_pow``, do not
        hold every entry)
    :return: the parameters, or ``None`` and why not
    """
    if search_space != "update":
        return None, f"only entries of the update space are enqueued, not of {search_space!r}"
    entry = config.load_hyperparams(algo, env_id)
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(ALGO_SPECS[algo].load().__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    probe = optuna.create_study(direction="maximize").ask()
    SEARCH_SPACES[search_space][algo](probe, _n_actions(env_id), 1, {})
    distributions = dict(probe.distributions)
    # kl_dual_lr is drawn with the dual controller only: the entry's controller says whether it belongs
    dual_lr = distributions.pop("kl_dual_lr", optuna.distributions.FloatDistribution(1.0, 1000.0, log=True))
    if algo == "klppo" and entry.get("kl_adaptation", defaults["kl_adaptation"]) == "dual":
        distributions["kl_dual_lr"] = dual_lr
    params: dict[str, Any] = {}
    for name, distribution in distributions.items():
        value = entry.get(name, defaults.get(name))
        if isinstance(distribution, optuna.distributions.CategoricalDistribution):
            if value not in distribution.choices:
                return None, f"{name}={value!r} is not one of {list(distribution.choices)}"
        elif not isinstance(value, (int, float)):  # a schedule ("lin_0.001")
            return None, f"{name} is {value!r} in the entry, not a number of the search space"
        elif not distribution.low <= value <= distribution.high:  # type: ignore[attr-defined]
            return None, f"{name}={value!r} is outside [{distribution.low}, {distribution.high}]"  # type: ignore[attr-defined]
        params[name] = value
    return params, ""


def prepare_study(storage: str, name: str, algo: str, env_id: str, search_space: str, command: str) -> optuna.Study:
    """
    Open the study, creating it with the entry as its first trial when it is new (``update`` space).

    :param command: the command that runs the study, as :func:`shown_command` writes it: a new study keeps it as
        its ``command`` attribute, which the workers then leave as it is
    :return: the study
    """
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    if "command" not in study.user_attrs:
        study.set_user_attr("command", command)
    if not study.trials and ENTRY_ATTR not in study.user_attrs:
        study.set_user_attr("algo", algo)
        study.set_user_attr("env", env_id)
        study.set_user_attr("search_space", search_space)
        params, reason = entry_params(algo, env_id, search_space)
        if params is None:
            print(f"the entry is not enqueued: {reason}", flush=True)
            study.set_user_attr(ENTRY_ATTR, f"not run: {reason}")
        else:
            study.enqueue_trial(params, user_attrs={ENTRY_ATTR: True})
            study.set_user_attr(ENTRY_ATTR, "trial 0")
            print(f"the entry's values are trial 0: {params}", flush=True)
    return study


def tune_command(
    algo: str, env_id: str, budget: int, trials: int, search_space: str, storage: str, name: str, log_dir: str, seed: int
) -> list[str]:
    """The ``sb3-npg train -optimize`` command of one study."""
    command = [sys.executable, "-m", "sb3_npg", "train", "--algo", algo, "--env", env_id, "-n", str(budget), "-optimize"]
    command += ["--search-space", search_space, "--max-total-trials", str(trials), *OPTIMIZE_FLAGS]
    command += ["--storage", storage, "--study-name", name, "-f", log_dir, "--seed", str(seed)]
    return command


def shown_command(command: Sequence[str]) -> str:
    """
    :func:`tune_command`'s command as a user types it: ``sb3-npg`` for the interpreter, and every path under the
    working folder relative to it (``sqlite:///benchmarks/results/tuning/npg_Hopper-v5.db``).
    """
    here = f"{Path.cwd()}{os.sep}"
    return shlex.join(["sb3-npg", *(argument.replace(here, "") for argument in command[3:])])


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def report(results_dir: Path) -> str:
    """
    A Markdown table of every study under ``results_dir``, written to ``<results_dir>/studies.md``.

    :return: the table
    """
    rows = [
        "| study | trials: complete / pruned / failed | entry (trial 0) | best | best trial's parameters |",
        "| --- | --- | --- | --- | --- |",
    ]
    for path in sorted(results_dir.glob("*.db")):
        storage = f"sqlite:///{path}"
        for summary in optuna.get_all_study_summaries(storage):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            states = [trial.state.name for trial in study.trials]
            counts = " / ".join(str(states.count(state)) for state in ("COMPLETE", "PRUNED", "FAIL"))
            entry_trials = [t for t in study.trials if t.user_attrs.get(ENTRY_ATTR)]
            if entry_trials and entry_trials[0].value is not None:
                entry = f"{entry_trials[0].value:.1f} ({entry_trials[0].state.name.lower()})"
            else:
                entry = str(study.user_attrs.get(ENTRY_ATTR, "not run"))
            complete = [t for t in study.trials if t.state.name == "COMPLETE"]
            if complete:
                best = max(complete, key=lambda trial: float(trial.value or 0.0))
                best_text = f"{best.value:.1f} (trial {best.number})"
                params = ", ".join(f"{key}={_format(value)}" for key, value in best.params.items())
            else:
                best_text, params = "none yet", ""
            rows.append(f"| {summary.study_name} | {counts} | {entry} | {best_text} | {params} |")
    table = "\n".join(rows) + "\n"
    (results_dir / REPORT).write_text(table)
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algo", choices=ALGOS, help="the algorithm whose entry is tuned")
    parser.add_argument("--env", help="the environment of the entry")
    parser.add_argument("--budget", type=int, default=100_000, help="environment steps per trial (default: 100000)")
    parser.add_argument("--trials", type=int, default=20, help="trials in the study in all (--max-total-trials; default: 20)")
    parser.add_argument("--search-space", choices=SEARCH_SPACE_NAMES, default="update", help="default: update")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler (give each resumption its own)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"default: {RESULTS_DIR}")
    parser.add_argument("--log-dir", default="logs/tuning", help="the zoo's log folder of the trials (default: logs/tuning)")
    parser.add_argument("--dry-run", action="store_true", help="prepare the study and print the command, do not run it")
    parser.add_argument("--report", action="store_true", help=f"write {REPORT} for every study of --results-dir and stop")
    args = parser.parse_args(argv)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    if args.report:
        print(report(args.results_dir), end="")
        return
    if args.algo is None or args.env is None:
        parser.error("--algo and --env are required unless --report")
    if args.budget <= 0 or args.trials <= 0:
        parser.error("--budget and --trials must be positive")
    storage = storage_url(args.results_dir, args.algo, args.env)
    name = study_name(args.algo, args.env, args.search_space, args.budget)
    command = tune_command(
        args.algo, args.env, args.budget, args.trials, args.search_space, storage, name, args.log_dir, args.seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = prepare_study(storage, name, args.algo, args.env, args.search_space, shown_command(command))
    print(f"study {name}: {len(study.trials)} trials so far", flush=True)
    print(shown_command(command), flush=True)
    if not args.dry_run:
        subprocess.run(command, check=True)
        print(report(args.results_dir), end="")


if __name__ == "__main__":
    main()
