"""
KLPPO diagnostics: what the KL controller does update by update, and how the KL spreads over minibatches.

Builds a model from the shipped (or the zoo's) entry, trains it for ``--updates`` updates and prints, per
update, the logger's ``train/`` values that describe the step: the KL of the whole rollout after the
update, beta, the learning-rate multiplier, whether the epochs stopped early, the entropy. Then, after one
more update run to the end (no early stop), the KL of each minibatch against the rollout's: how far a single
minibatch, the quantity the early stop looks at, strays from the KL the controller sees.

    python benchmarks/klppo_diagnostics.py --algo klppo_lstm --env PendulumNoVel-v1 --updates 8
    python benchmarks/klppo_diagnostics.py --algo klppo_lstm --env PendulumNoVel-v1 --set kl_early_stop=1.25
    python benchmarks/klppo_diagnostics.py --algo ppo_lstm --env PendulumNoVel-v1   # RecurrentPPO with the zoo's entry

``ppo`` and ``ppo_lstm`` (the zoo's entries) print their own ``approx_kl`` and ``clip_fraction`` per update.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml
from stable_baselines3.common.logger import configure

from common.algos import algorithm_class
from common.cli import make_parser
from common.entries import resolve_entry
from sb3_npg.common.kl import policy_kl
from sb3_npg.klppo.klppo import KLPPO
from sb3_npg.zoo import config
from sb3_npg.zoo.algos import ALGOS

# Columns printed per update, when the algorithm logs them
COLUMNS = (
    "rollout/ep_rew_mean",
    "train/kl",
    "train/approx_kl",
    "train/target_kl",
    "train/kl_coef",
    "train/lr_multiplier",
    "train/early_stop",
    "train/n_epochs",
    "train/clip_fraction",
    "train/entropy_loss",
    "train/explained_variance",
)
# Ours with KLPPO's update (klppo, klppo_lstm), then their peers (ppo, ppo_lstm)
KLPPO_ALGOS = tuple(name for name, spec in ALGOS.items() if spec.search_space == "klppo")
PEERS = tuple(dict.fromkeys(ALGOS[name].peer for name in KLPPO_ALGOS))


def build(algo: str, env_id: str, seed: int, overrides: dict[str, Any]) -> tuple[Any, int]:
    """
    The model of ``algo`` on ``env_id`` from its entry, found as ``learning.py`` finds it (:mod:`common.entries`; ours:
    the shipped files; peers: the installed zoo's, the version fallback included).

    :param algo: ``klppo``, ``klppo_lstm``, ``ppo`` or ``ppo_lstm``
    :param env_id: the environment
    :param seed: the seed
    :param overrides: constructor arguments that replace the entry's
    :return: the model and the entry's budget (``n_timesteps``)
    """
    found = resolve_entry(algo, env_id)
    if found is None:
        raise SystemExit(f"no {algo} entry for {env_id}")
    entry, _ = found
    env = config.make_env_from_hyperparams(entry, env_id, seed=seed)
    kwargs = {**config.constructor_kwargs(entry), **overrides}
    algorithm = algorithm_class(algo)
    model = algorithm(entry.get("policy", "MlpPolicy"), env, seed=seed, device="cpu", verbose=0, **kwargs)
    return model, int(float(entry["n_timesteps"]))


class _Measured(Exception):
    """Raised once the extra update has been measured: training stops there."""


def run(model: Any, updates: int, budget: int) -> tuple[list[dict[str, str]], dict[str, float] | None]:
    """
    Train for ``updates`` updates, logging each, then (KLPPO) one more update run to the end, whose KL is
    measured per minibatch.

    ``learn()`` is given the entry's whole budget, so that the learning-rate and target schedules are where
    they would be in a real run, and stopped after update ``updates + 1`` (SB3 logs an update's ``train/``
    values after the next rollout; for KLPPO that update is the measured one).

    :param model: the model
    :param updates: how many updates to log
    :param budget: the entry's budget, which sets the schedules
    :return: the logger's rows of those updates, and the minibatch KL spread (``None`` unless KLPPO)
    """
    folder = tempfile.mkdtemp(prefix="klppo_diagnostics_")
    model.set_logger(configure(folder, ["csv"]))
    spread: dict[str, float] = {}
    calls = 0
    train = model.train

    def train_then_measure() -> None:
        nonlocal calls
        calls += 1
        if calls <= updates:
            train()
            return
        if isinstance(model, KLPPO):
            model.kl_early_stop = None
            train()
            spread.update(minibatch_kl_spread(model))
        raise _Measured

    model.train = train_then_measure
    with contextlib.suppress(_Measured):
        model.learn(max(budget, (updates + 2) * model.n_steps * model.n_envs))
    model.train = train
    with open(Path(folder) / "progress.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    return rows[1 : updates + 1], (spread or None)


def minibatch_kl_spread(model: KLPPO) -> dict[str, float]:
    """
    ``KL(pi_old || pi)`` per minibatch of the rollout buffer, right after an update.

    :param model: a KLPPO (or RecurrentKLPPO) model that has just run ``train()``
    :return: the rollout's KL, the median, 90th percentile and largest minibatch KL, and the largest over the rollout's
    """
    kls, sizes = [], []
    model.policy.set_training_mode(False)
    with th.no_grad():
        for batch in model.rollout_buffer.get(model.batch_size):
            old, new = model._old_distribution(batch), model._new_distribution(batch)
            kl = policy_kl(old, new, model._actions(batch), batch.old_log_prob, model.kl_estimator)
            weights = model._batch_weights(batch)
            kl = kl if weights is None else kl[weights.bool()]
            kls.append(float(kl.mean()))
            sizes.append(int(kl.numel()))
    values = np.array(kls)
    rollout = float(np.average(values, weights=sizes))
    return {
        "minibatches": len(values),
        "rollout_kl": rollout,
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "largest": float(values.max()),
        "largest_over_rollout": float(values.max() / rollout) if rollout > 0 else float("nan"),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = make_parser(__doc__, show_defaults=False)
    parser.add_argument("--algo", default="klppo_lstm", choices=[*KLPPO_ALGOS, *PEERS])
    parser.add_argument("--env", default="PendulumNoVel-v1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--updates", type=int, default=6, help="updates to print")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override the entry (values as YAML)")
    args = parser.parse_args(argv)
    if args.updates <= 0:
        parser.error("--updates must be positive")
    try:
        args.overrides = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    except ValueError:
        parser.error("--set takes KEY=VALUE pairs")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    th.set_num_threads(1)
    model, budget = build(args.algo, args.env, args.seed, args.overrides)
    rows, spread = run(model, args.updates, budget)
    columns = [column for column in COLUMNS if rows and column in rows[0]]
    print(f"{args.algo} on {args.env}, seed {args.seed}" + (f", {' '.join(args.set)}" if args.set else ""))
    print("update | " + " | ".join(column.split("/")[1] for column in columns))
    for index, row in enumerate(rows, start=1):
        print(f"{index} | " + " | ".join(f"{float(row[c]):.4g}" if row.get(c) else "-" for c in columns))
    if spread is not None:
        print(
            f"one more update without early stop: {spread['minibatches']:.0f} minibatches, "
            f"rollout KL {spread['rollout_kl']:.4f}; minibatch KL median {spread['median']:.4f}, "
            f"90th percentile {spread['p90']:.4f}, largest {spread['largest']:.4f} "
            f"({spread['largest_over_rollout']:.2f}x the rollout's)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
