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

This file is the command line; the benchmark itself is in ``common/`` beside it: the entries (``common.entries``), the
planner (``common.planner``), the run (``common.run``), its evaluation and checkpoints (``common.evaluation``,
``common.checkpoints``) and the CSV files (``common.results``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common.algos import OUR_ALGOS, PEER_ALGOS, SUITES
from common.checkpoints import CHECKPOINTS_DIR, DEFAULT_CHECKPOINT_FREQ, load_checkpoint, with_checkpoints
from common.cli import add_variant_argument, make_parser, parse_timesteps, parse_variants
from common.planner import describe, plan_runs
from common.results import RESULTS_DIR, RUNS_FILE, finished_runs
from common.run import execute


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    :return: the parsed arguments
    """
    parser = make_parser(__doc__)
    parser.add_argument(
        "--suite",
        choices=sorted(SUITES),
        default="standard",
        help="default --envs and --algos: 'standard' (MLP policies) or 'recurrent' (LSTM policies on the NoVel tasks)",
    )
    algos = sorted((*OUR_ALGOS, *PEER_ALGOS))
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
    add_variant_argument(
        parser,
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
            print(f"skip {describe(spec)}: already in {RUNS_FILE}", flush=True)
    print(f"{len(todo)} runs to do, {len(runs) - len(todo)} already done, {len(skipped)} algo/env pairs skipped", flush=True)
    if args.dry_run:
        for spec in todo:
            checkpoint = load_checkpoint(spec)
            resumes = "" if checkpoint is None else f", resumes from {checkpoint[1]['num_timesteps']} steps"
            print(f"  {describe(spec)}, evaluation every {spec.eval_freq} steps{resumes}")
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
