"""
Tuning throughput: finished trials per hour with 1 worker against 2, in the same run, on the same trials.

For each number of workers, a fresh study of the given storage receives the same ``--trials`` trials
(hyperparameters drawn once by a seeded random sampler, then enqueued), and that many ``sb3-npg train
-optimize --max-total-trials N`` processes run them (CartPole-v1, ``--timesteps`` steps per trial, one torch
thread per process). Trials per hour = trials finished / (first trial start to last trial end); the wall
time of the whole command, process start-up included, is reported too.

    python benchmarks/tuning_throughput.py --storage postgresql://user:password@127.0.0.1:5432/optuna
    python benchmarks/tuning_throughput.py        # an Optuna journal file in a temporary folder

Writes ``benchmarks/results/tuning_throughput.json`` and ``.md``.
"""

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import optuna

from sb3_npg.zoo.hyperparams_opt import HYPERPARAMS_SAMPLER
from sb3_npg.zoo.tuning import check_study, describe, open_storage

RESULTS = Path(__file__).parent / "results"


def draw_trials(algo: str, n_trials: int, seed: int) -> list[dict[str, Any]]:
    """The raw parameters of ``n_trials`` trials drawn by the random sampler, as the zoo's sampler asks for them."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), direction="maximize")
    params = []
    for _ in range(n_trials):
        trial = study.ask()
        HYPERPARAMS_SAMPLER[algo](trial, 1, 1, {})
        params.append(dict(trial.params))
        study.tell(trial, 0.0)
    return params


def _children_cpu() -> float:
    """User and system CPU seconds of the finished child processes of this process."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_workers(args: argparse.Namespace, storage: str, n_workers: int, trials: list[dict[str, Any]], folder: Path) -> dict:
    """Tune a fresh study holding ``trials`` with ``n_workers`` processes; the timings of the run."""
    study_name = f"throughput-{n_workers}-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=open_storage(storage), study_name=study_name, direction="maximize")
    check_study(study, args.algo, args.env, storage)  # records algo and env, as the command line does
    for params in trials:
        study.enqueue_trial(params)
    command = [sys.executable, "-m", "sb3_npg", "train", "--algo", args.algo, "--env", args.env]
    command += ["-n", str(args.timesteps), "-optimize", "--max-total-trials", str(len(trials)), "--sampler", "random"]
    command += ["--pruner", "none", "--storage", storage, "--study-name", study_name, "--no-optim-plots"]
    command += ["--eval-episodes", str(args.eval_episodes), "--num-threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg"}
    load_before = os.getloadavg()[0]
    cpu_before = _children_cpu()
    start = time.perf_counter()
    processes = []
    for worker in range(n_workers):
        log = open(folder / f"{study_name}-{worker}.txt", "w")  # noqa: SIM115 (closed below)
        argv = [*command, "--seed", str(args.seed + worker), "-f", str(folder / f"logs-{study_name}-{worker}")]
        processes.append((subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    for process, log in processes:
        process.wait()
        log.close()
        if process.returncode != 0:
            raise RuntimeError(f"a worker failed, see {log.name}")
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before

    trials_run = optuna.load_study(study_name=study_name, storage=open_storage(storage)).trials
    finished = [trial for trial in trials_run if trial.state.is_finished() and trial.datetime_complete is not None]
    first_start = min(trial.datetime_start for trial in finished if trial.datetime_start is not None)
    last_end = max(trial.datetime_complete for trial in finished if trial.datetime_complete is not None)
    span = (last_end - first_start).total_seconds()
    return {
        "workers": n_workers,
        "trials": len(finished),
        "states": sorted({trial.state.name for trial in finished}),
        "trial_span_s": round(span, 1),
        "wall_s": round(wall, 1),
        "trials_per_hour": round(3600.0 * len(finished) / span, 1),
        "trials_per_hour_wall": round(3600.0 * len(finished) / wall, 1),
        # CPU time of the workers (start-up included): equal work, so a slower row had fewer cores, not more work
        "cpu_s": round(cpu, 1),
        # the machine's 1-minute load average before and after: other processes competing for the cores
        "load_before": round(load_before, 1),
        "load_after": round(os.getloadavg()[0], 1),
    }


def markdown(result: dict) -> str:
    lines = [
        f"Tuning throughput, {result['algo']} on {result['env']}: {result['trials']} trials of {result['timesteps']} steps "
        f"(the same enqueued trials for each row), storage {result['storage']}.",
        "",
        "| workers | trials | first start to last end, s | trials/hour | wall with start-up, s | workers' CPU, s | load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["runs"]:
        lines.append(
            f"| {row['workers']} | {row['trials']} | {row['trial_span_s']} | {row['trials_per_hour']} | {row['wall_s']} "
            f"| {row['cpu_s']} | {row['load_before']} -> {row['load_after']} |"
        )
    lines += [
        "",
        f"Speed-up of 2 workers over 1 (trials/hour): {result['speedup']:.2f}x. Workers' CPU: user and system time of "
        "all workers, start-up included. Load: the machine's 1-minute load average before and after each row "
        "(other processes competing for the cores).",
        "",
    ]
    lines += [f"Command: `{result['command']}`", "", f"Machine: {result['machine']}. {result['note']}".strip(), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: a journal file in a temporary folder)")
    parser.add_argument("--algo", default="npg", choices=sorted(HYPERPARAMS_SAMPLER))
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--trials", type=int, default=8, help="trials per configuration")
    parser.add_argument("--timesteps", type=int, default=2000, help="environment steps per trial")
    parser.add_argument("--eval-episodes", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn trials (and of the workers)")
    parser.add_argument("--note", default="", help="a note on the machine, written with the results")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    for name in ("trials", "timesteps", "eval_episodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")

    trials = draw_trials(args.algo, args.trials, args.seed)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        storage = args.storage or str(folder / "study.log")
        runs = []
        for n_workers in args.workers:
            runs.append(run_workers(args, storage, n_workers, trials, folder))
            print(json.dumps(runs[-1]), flush=True)
    by_workers = {row["workers"]: row for row in runs}
    speedup = by_workers[2]["trials_per_hour"] / by_workers[1]["trials_per_hour"] if {1, 2} <= set(by_workers) else 0.0
    shown_storage = describe(args.storage) if args.storage else "an Optuna journal file"
    shown_argv = [describe(arg) if arg == args.storage else arg for arg in sys.argv[1:]]  # without the password
    result = {
        "algo": args.algo,
        "env": args.env,
        "trials": args.trials,
        "timesteps": args.timesteps,
        "storage": shown_storage,
        "runs": runs,
        "speedup": speedup,
        "command": shlex.join(["python", "benchmarks/tuning_throughput.py", *shown_argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "note": args.note,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "tuning_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.results_dir / "tuning_throughput.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
