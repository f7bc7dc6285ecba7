"""
KLPPO's controllers against PPO on SB3's identity tasks, at the budgets SB3's own tests use and beyond.

Setting: ``IdentityEnv``, ``IdentityEnvMultiDiscrete`` and ``IdentityEnvMultiBinary`` of dimension 4 (SB3's
``tests/test_identity.py``: one environment, ``gamma=0.4``, every other argument at the algorithm's default, and
2,500 steps, where SB3 asks for an evaluation return above 90 out of 100). Each run trains for ``--rollouts``
rollouts of the default 2,048 steps and evaluates the deterministic policy over 20 episodes after each one; the
first evaluation is at SB3's budget (``learn(2500)`` collects two rollouts, 4,096 steps).

One row per (algorithm, task, seed) goes to the CSV as soon as the run ends; runs already in the file are skipped,
so an interrupted invocation resumes where it stopped. The summary (mean and standard deviation over seeds after
each rollout, and the fraction of seeds above 90 at SB3's budget) is computed from the file.

Usage::

    python benchmarks/identity.py                        # PPO and both KLPPO controllers, seeds 0-9
    python benchmarks/identity.py --algos ppo klppo:adaptive --seeds 0 1
"""

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.envs import IdentityEnv, IdentityEnvMultiBinary, IdentityEnvMultiDiscrete
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from common.results import RESULTS_DIR, read_rows, write_rows
from sb3_npg import KLPPO

DIM = 4
GAMMA = 0.4  # SB3's identity tests
N_STEPS = 2048  # PPO's and KLPPO's default rollout
SB3_ROLLOUTS = 2  # SB3's learn(2500) collects two rollouts
SB3_THRESHOLD = 90.0
EVAL_EPISODES = 20

TASKS: dict[str, Callable[[int], gym.Env]] = {
    "Discrete": IdentityEnv,
    "MultiDiscrete": IdentityEnvMultiDiscrete,
    "MultiBinary": IdentityEnvMultiBinary,
}
# Name -> (class, keyword arguments on top of the setting above)
ALGOS: dict[str, tuple[Callable[..., BaseAlgorithm], dict[str, Any]]] = {
    "ppo": (PPO, {}),
    "klppo": (KLPPO, {}),  # KLPPO's default controller, whichever it is
    "klppo:tracking": (KLPPO, {"kl_adaptation": "tracking"}),
    "klppo:adaptive": (KLPPO, {"kl_adaptation": "adaptive"}),
    "klppo:adaptive-no-stop": (KLPPO, {"kl_adaptation": "adaptive", "kl_early_stop": None}),  # the paper's rule alone
}

DEFAULT_OUTPUT = RESULTS_DIR / "identity" / "identity.csv"
FIELDS = ["algo", "task", "seed", "returns", "wall_s"]


def run(algo: str, task: str, seed: int, rollouts: int) -> dict[str, Any]:
    """
    Train one algorithm on one task and evaluate it after each rollout.

    :param algo: a key of ``ALGOS``
    :param task: a key of ``TASKS``
    :param seed: seed of the model
    :param rollouts: number of rollouts of ``N_STEPS`` steps
    :return: a row of the results file (``returns``: the mean evaluation return after each rollout)
    """
    algo_class, kwargs = ALGOS[algo]
    env = DummyVecEnv([lambda: TASKS[task](DIM)])
    model = algo_class("MlpPolicy", env, gamma=GAMMA, seed=seed, **kwargs)
    returns = []
    start = time.perf_counter()
    for _ in range(rollouts):
        model.learn(N_STEPS, reset_num_timesteps=False)
        mean_return, _ = cast(tuple[float, float], evaluate_policy(model, env, n_eval_episodes=EVAL_EPISODES, warn=False))
        returns.append(float(mean_return))
    return {"algo": algo, "task": task, "seed": seed, "returns": returns, "wall_s": time.perf_counter() - start}


def read_results(path: Path) -> list[dict[str, Any]]:
    """
    The rows of a results file, typed (an absent file has no rows).

    :param path: the CSV file
    :return: the rows
    """
    return [
        {
            **row,
            "seed": int(row["seed"]),
            "wall_s": float(row["wall_s"]),
            "returns": [float(v) for v in row["returns"].split()],
        }
        for row in read_rows(path)
    ]


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    """
    Write the rows, sorted by algorithm, task and seed, atomically.

    :param path: the CSV file
    :param rows: the rows (``returns`` as a list)
    """
    rows = sorted(rows, key=lambda row: (row["algo"], row["task"], row["seed"]))
    formatted = (
        {**row, "returns": " ".join(f"{value:.1f}" for value in row["returns"]), "wall_s": f"{row['wall_s']:.1f}"}
        for row in rows
    )
    write_rows(path, formatted, FIELDS)


def summarize(rows: list[dict[str, Any]]) -> str:
    """
    A markdown table: per task and algorithm, the mean +- std over seeds after each rollout, and the fraction of
    seeds above SB3's threshold at SB3's budget.

    :param rows: the results
    :return: the table, as text
    """
    n_rollouts = min((len(row["returns"]) for row in rows), default=0)
    header = ["task", "algo", "seeds", f"> {SB3_THRESHOLD:g} at SB3's budget"]
    header += [f"{(index + 1) * N_STEPS} steps" for index in range(n_rollouts)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for task in TASKS:
        for algo in ALGOS:
            selected = [row for row in rows if row["task"] == task and row["algo"] == algo]
            if not selected:
                continue
            returns = np.array([row["returns"][:n_rollouts] for row in selected])
            stds = returns.std(axis=0, ddof=1) if len(selected) > 1 else np.zeros(n_rollouts)
            passed = float(np.mean(returns[:, SB3_ROLLOUTS - 1] > SB3_THRESHOLD)) if n_rollouts >= SB3_ROLLOUTS else np.nan
            cells = [task, algo, str(len(selected)), f"{passed:.0%}"]
            cells += [f"{mean:.1f} ± {std:.1f}" for mean, std in zip(returns.mean(axis=0), stds, strict=True)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--algos", nargs="+", default=["ppo", "klppo:tracking", "klppo:adaptive"], choices=list(ALGOS))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--rollouts", type=int, default=5, help="rollouts of 2048 steps per run (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results CSV (default: %(default)s)")
    args = parser.parse_args()
    if args.rollouts < SB3_ROLLOUTS:
        parser.error(f"--rollouts must be at least {SB3_ROLLOUTS} (SB3's budget), got {args.rollouts}")

    th.set_num_threads(1)
    rows = read_results(args.output)
    for task in args.tasks:
        for algo in args.algos:
            for seed in args.seeds:
                if any(row["algo"] == algo and row["task"] == task and row["seed"] == seed for row in rows):
                    continue
                row = run(algo, task, seed, args.rollouts)
                print(f"{algo:<15} {task:<13} seed {seed}: {row['returns']} ({row['wall_s']:.0f} s)", flush=True)
                rows.append(row)
                write_results(args.output, rows)
    table = summarize(read_results(args.output))
    print(table)
    args.output.with_name("identity_table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
