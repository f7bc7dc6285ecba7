"""
The benchmarks' results files.

- CSV I/O: :func:`read_rows`; :func:`append_rows` (the files that grow a row at a time as runs finish: ``learning.csv``,
  ``learning_curves.csv``, ``cost.csv``); :func:`write_rows` (the files rewritten whole, atomically: ``identity.csv``,
  ``klppo_controller.csv``);
- the learning benchmark's files (:data:`RUNS_FILE`, :data:`CURVES_FILE`), their columns and :func:`finished_runs`;
- the columns every benchmark records the same way: :func:`host_description` (``host``) and :func:`utc_now`
  (``finished``).
"""

from __future__ import annotations

import csv
import datetime
import os
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"
"""``benchmarks/results``: where the scripts write by default."""

RUNS_FILE = "learning.csv"
CURVES_FILE = "learning_curves.csv"
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
"""The columns of a new ``learning.csv``, one row per finished run."""
CURVE_FIELDS = ("algo", "env", "seed", "budget", "timesteps", "eval_mean", "eval_std")
"""The columns of a new ``learning_curves.csv``, one row per evaluation."""


def read_rows(path: Path) -> list[dict[str, str]]:
    """
    The rows of a CSV file with a header, as text.

    :param path: the CSV file
    :return: its rows (none when the file does not exist)
    """
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def append_rows(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    """
    Append rows to a CSV file, writing the header first when the file is new (parent process only), and flush them
    to the disk: an interrupted benchmark keeps every row written before.

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


def write_rows(path: Path, rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> None:
    """
    Write a whole CSV file atomically: into ``<name>.tmp`` beside it, then renamed over it (its folder is made if
    needed).

    :param path: the CSV file
    :param rows: the rows, in order, their values as they are to be written
    :param fields: the columns
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(".tmp")
    with open(tmp_path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)
    tmp_path.replace(path)


def finished_runs(path: Path) -> set[tuple[str, str, int, int]]:
    """
    The runs ``learning.csv`` already holds.

    :param path: ``learning.csv``
    :return: their ``(algo, env, seed, timesteps)``
    """
    return {(row["algo"], row["env"], int(row["seed"]), int(row["timesteps"])) for row in read_rows(path)}


def host_description() -> str:
    """
    The machine a benchmark ran on (the ``host`` column): steps/s and CPU seconds compare only within one.

    :return: ``"<n>-cpu <architecture>"``
    """
    return f"{os.cpu_count()}-cpu {platform.machine()}"


def utc_now() -> str:
    """
    The time now (the ``finished`` column).

    :return: UTC, ISO 8601, to the second
    """
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
