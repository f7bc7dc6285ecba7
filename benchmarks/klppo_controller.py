"""
How well KLPPO's controllers keep the KL of an update near its target.

Setting (issue 3): Pendulum-v1, one environment, ``n_steps=512``, ``batch_size=64``, ``n_epochs=10``,
``target_kl=0.01``, 20 updates, every other argument at KLPPO's default. For each controller and seed
the script records ``train/kl`` (the KL of the whole rollout, measured after the update) of every
update and the fraction of the updates after the fifth whose KL lies in ``[target / 3, 3 target]``.

One row per (controller, seed) goes to the CSV as soon as the run ends; runs already in the file are
skipped, so an interrupted invocation resumes where it stopped (``--force`` reruns them). The summary
printed at the end (mean, standard deviation, min and max over seeds) is computed from the file.

Usage::

    python benchmarks/klppo_controller.py                       # every controller and ablation, seeds 0-4
    python benchmarks/klppo_controller.py --controllers tracking --seeds 0 1
"""

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger

from common.results import RESULTS_DIR, read_rows, write_rows
from sb3_npg import KLPPO

ENV_ID = "Pendulum-v1"
N_STEPS = 512
BATCH_SIZE = 64
N_EPOCHS = 10
TARGET_KL = 0.01
N_UPDATES = 20
WARMUP_UPDATES = 5  # the band is checked on the updates after these
BAND = (TARGET_KL / 3, 3 * TARGET_KL)

# Controller name -> KLPPO keyword arguments (on top of the setting above and KLPPO's defaults)
CONTROLLERS: dict[str, dict[str, Any]] = {
    "tracking": {"kl_adaptation": "tracking"},
    # ablation: an early stop above the paper rule's dead band
    "tracking-stop-2": {"kl_adaptation": "tracking", "kl_early_stop": 2.0},
    # ablation: the step-size controller alone
    "tracking-no-stop": {"kl_adaptation": "tracking", "kl_early_stop": None},
    "adaptive": {"kl_adaptation": "adaptive"},
    "adaptive-no-stop": {"kl_adaptation": "adaptive", "kl_early_stop": None},  # the PPO paper's method alone
    "dual": {"kl_adaptation": "dual"},
    "fixed": {"kl_adaptation": "fixed"},
}

DEFAULT_OUTPUT = RESULTS_DIR / "klppo_controller.csv"
FIELDS = ["controller", "seed", "in_band_fraction", "kl_median", "final_kl_coef", "final_lr_multiplier", "wall_time_s", "kls"]


class _KeyRecorder(KVWriter):
    """A logger output that keeps the values of the given keys, one per dump."""

    def __init__(self, keys: Sequence[str]):
        self.values: dict[str, list[float]] = {key: [] for key in keys}

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        for key, values in self.values.items():
            if key in key_values:
                values.append(float(key_values[key]))


def in_band_fraction(kls: Sequence[float], band: tuple[float, float] = BAND, warmup: int = WARMUP_UPDATES) -> float:
    """
    Fraction of the updates after the first ``warmup`` whose KL lies in ``band`` (bounds included).

    :param kls: the measured KL of each update, in order
    :param band: the lower and upper bound
    :param warmup: number of initial updates left out
    :return: the fraction, in [0, 1]
    """
    checked = np.asarray(kls[warmup:], dtype=float)
    if checked.size == 0:
        raise ValueError(f"need more than {warmup} updates, got {len(kls)}")
    return float(np.mean((checked >= band[0]) & (checked <= band[1])))


def run_controller(controller: str, seed: int, n_updates: int = N_UPDATES, **overrides: Any) -> dict[str, Any]:
    """
    Train KLPPO with one controller on the benchmark's setting and return the measured KL of each update.

    :param controller: a key of ``CONTROLLERS``
    :param seed: seed of the model and the environment
    :param n_updates: number of updates (rollouts of ``N_STEPS`` steps)
    :param overrides: further KLPPO keyword arguments
    :return: a row of the results file (``kls`` as a list)
    """
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    kwargs = {**CONTROLLERS[controller], **overrides}
    model = KLPPO(
        "MlpPolicy", env, n_steps=N_STEPS, batch_size=BATCH_SIZE, n_epochs=N_EPOCHS, target_kl=TARGET_KL, seed=seed, **kwargs
    )
    recorder = _KeyRecorder(["train/kl"])
    model.set_logger(Logger(folder=None, output_formats=[recorder]))
    start = time.perf_counter()
    model.learn(n_updates * N_STEPS)
    model.logger.dump(model.num_timesteps)  # the last update's values are still pending
    wall_time = time.perf_counter() - start
    kls = recorder.values["train/kl"]
    if len(kls) != n_updates:
        raise RuntimeError(f"expected {n_updates} measured KLs, got {len(kls)}")
    return {
        "controller": controller,
        "seed": seed,
        "in_band_fraction": in_band_fraction(kls),
        "kl_median": float(np.median(kls[WARMUP_UPDATES:])),
        "final_kl_coef": model.kl_coef,
        "final_lr_multiplier": model.lr_multiplier,
        "wall_time_s": wall_time,
        "kls": kls,
    }


def read_results(path: Path) -> list[dict[str, Any]]:
    """
    The rows of a results file, typed (an absent file has no rows).

    :param path: the CSV file
    :return: the rows
    """
    rows: list[dict[str, Any]] = []
    for text in read_rows(path):
        row: dict[str, Any] = {**text, "seed": int(text["seed"]), "kls": [float(value) for value in text["kls"].split()]}
        for key in ("in_band_fraction", "kl_median", "final_kl_coef", "final_lr_multiplier", "wall_time_s"):
            row[key] = float(text[key])
        rows.append(row)
    return rows


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    """
    Write the rows, sorted by controller (in ``CONTROLLERS`` order) and seed, atomically.

    :param path: the CSV file
    :param rows: the rows (``kls`` as a list)
    """
    order = {name: index for index, name in enumerate(CONTROLLERS)}
    rows = sorted(rows, key=lambda row: (order.get(row["controller"], len(order)), row["controller"], row["seed"]))
    formatted = []
    for row in rows:
        text = {key: row[key] for key in FIELDS}
        for key in ("in_band_fraction", "kl_median", "final_kl_coef", "final_lr_multiplier"):
            text[key] = f"{row[key]:.6g}"
        text["wall_time_s"] = f"{row['wall_time_s']:.1f}"
        text["kls"] = " ".join(f"{kl:.6g}" for kl in row["kls"])
        formatted.append(text)
    write_rows(path, formatted, FIELDS)


def summarize(rows: list[dict[str, Any]]) -> str:
    """
    One line per controller: in-band fraction over seeds (mean, standard deviation, min, max) and median KL.

    :param rows: the results
    :return: the table, as text
    """
    lines = [f"{'controller':<18} {'seeds':>5} {'in band: mean':>13} {'std':>6} {'min':>6} {'max':>6} {'median KL':>10}"]
    for controller in dict.fromkeys(row["controller"] for row in rows):
        selected = [row for row in rows if row["controller"] == controller]
        fractions = np.array([row["in_band_fraction"] for row in selected])
        median_kl = float(np.median([row["kl_median"] for row in selected]))
        lines.append(
            f"{controller:<18} {len(selected):>5} {fractions.mean():>13.2f} {fractions.std():>6.2f} "
            f"{fractions.min():>6.2f} {fractions.max():>6.2f} {median_kl:>10.4f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--controllers", nargs="+", default=list(CONTROLLERS), choices=list(CONTROLLERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results CSV (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rerun the runs already in the results file")
    args = parser.parse_args()

    th.set_num_threads(1)
    rows = read_results(args.output)
    for controller in args.controllers:
        for seed in args.seeds:
            done = [row for row in rows if row["controller"] == controller and row["seed"] == seed]
            if done and not args.force:
                continue
            row = run_controller(controller, seed)
            fraction, wall_time = row["in_band_fraction"], row["wall_time_s"]
            print(f"{controller:<18} seed {seed}: {fraction:.2f} in band ({wall_time:.0f} s)", flush=True)
            rows = [r for r in rows if r not in done] + [row]
            write_results(args.output, rows)
    print(summarize(read_results(args.output)))


if __name__ == "__main__":
    main()
