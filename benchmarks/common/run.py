"""
The runs of the learning benchmark: one run, and many at once.

- :func:`run_one`: train and evaluate one :class:`~common.planner.RunSpec` (from its checkpoint, when it has one) and
  return its ``learning.csv`` row and its ``learning_curves.csv`` rows;
- :func:`execute`: the runs, in this process or ``jobs`` worker processes at a time (a fresh one per run, one torch
  thread each), each recorded by this process as soon as it finishes (:func:`record`).
"""

from __future__ import annotations

import multiprocessing
import sys
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from common.algos import algorithm_class, vec_env_class
from common.checkpoints import Checkpointing, RunClock, load_checkpoint, remove_checkpoint, resume
from common.evaluation import EVAL_ENVS, EVAL_SEED_OFFSET, PeriodicEvaluation
from common.planner import RunSpec, describe
from common.results import CURVE_FIELDS, CURVES_FILE, RUN_FIELDS, RUNS_FILE, append_rows, host_description, utc_now
from sb3_npg.zoo import config


def run_one(spec: RunSpec) -> dict[str, Any]:
    """
    Train and evaluate one run (in a worker process, or in this one with ``--jobs 1``).

    :param spec: the run
    :return: ``{"row": <learning.csv row>, "curve": [<learning_curves.csv rows>]}``
    """
    th.set_num_threads(1)
    entry = spec.entry
    # The copies in the class each command line holds them in: SB3's DummyVecEnv for the peers (rl_zoo3 train),
    # the same with a cheaper copy of the infos for ours (sb3-npg train); the same episodes either way
    vec_env_cls = vec_env_class(spec.algo)
    env = config.make_env_from_hyperparams(entry, spec.env, seed=spec.seed, vec_env_cls=vec_env_cls)
    # The evaluation episodes run side by side (one policy forward pass for all of them, one episode per copy
    # up to EVAL_ENVS copies): the same episodes as one after another, for a fraction of the time
    n_eval_envs = min(spec.eval_episodes, EVAL_ENVS)
    eval_seed = spec.seed + EVAL_SEED_OFFSET
    eval_env = config.make_env_from_hyperparams(entry, spec.env, seed=eval_seed, n_envs=n_eval_envs, vec_env_cls=vec_env_cls)
    evaluation = PeriodicEvaluation(eval_env, spec.eval_freq, spec.eval_episodes, f"{spec.label} {spec.env} seed {spec.seed}")
    hosts = [host_description()]
    checkpoint = load_checkpoint(spec)
    if checkpoint is None:
        kwargs = config.constructor_kwargs(entry)
        kwargs.update(verbose=0, device=spec.device)
        model = algorithm_class(spec.algo)(entry.get("policy", "MlpPolicy"), env, seed=spec.seed, **kwargs)
        clock = RunClock()
    else:
        model, clock = resume(spec, checkpoint, env, evaluation, hosts)
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
        "finished": utc_now(),
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


def record(results_dir: Path, spec: RunSpec, result: dict[str, Any]) -> None:
    """
    Write a finished run's curve, then its row (a run is finished, and skipped next time, only once its row is in
    ``learning.csv``), and delete its checkpoint.

    :param results_dir: where ``learning.csv`` and ``learning_curves.csv`` are
    :param spec: the run
    :param result: what :func:`run_one` returned
    """
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
            print(f"start {describe(spec)}", flush=True)
            try:
                result = run_one(spec)
            except Exception:
                failures += 1
                print(f"FAILED {describe(spec)}:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
                continue
            record(results_dir, spec, result)
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
                    print(f"FAILED {describe(spec)}:\n{details}", file=sys.stderr, flush=True)
                    continue
                record(results_dir, spec, future.result())
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return failures
