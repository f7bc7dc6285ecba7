"""
Figures and table of the learning benchmark, from the CSV files ``benchmarks/learning.py`` writes.

Writes into the results directory (default ``benchmarks/results``):

- ``curves_<env>.png``: evaluation return against environment steps, one line per algorithm (and budget,
  when an algorithm ran with several), the mean over seeds with a bootstrap 95% confidence band (rliable's);
- ``aggregate.png`` and ``aggregate.csv``: the final evaluations normalised per environment,
  ``(score - random) / (reference - random)`` with the constants of ``NORMALIZATION`` below, summarised
  by the interquartile mean (and the median and mean) with stratified-bootstrap 95% confidence intervals
  (rliable's);
- ``learning_table.md``: per environment and algorithm, the final evaluation (mean +- std over seeds),
  the number of seeds, the budget, the training speed and its ratio to TRPO's and PPO's in the same
  environment, and the command that reproduces the row.

    python benchmarks/plot_learning.py
    python benchmarks/plot_learning.py --results-dir /path/to/results

``--compare-dir DIR --compare-algos ALGO ...`` adds the runs of those algorithms from another results directory,
in the environments and at the budgets of this one (say, TRPO beside a set of ``--variant`` runs):

    python benchmarks/plot_learning.py --results-dir benchmarks/results/ablation \
        --compare-dir benchmarks/results --compare-algos trpo npg
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics as rly_metrics

from common.algos import ALGO_ORDER, SUITE, base_algo, is_ours
from common.cli import make_parser
from common.evaluation import DEFAULT_EVAL_EPISODES, default_eval_freq
from common.results import CURVE_FIELDS, CURVES_FILE, RESULTS_DIR, RUNS_FILE
from sb3_npg.zoo.algos import ALGOS

# Ours by the family of their update (NPG's blue, KLPPO's green: the LSTM ones as their MLP ones), then the peers
FAMILY_COLORS = {"npg": "tab:blue", "klppo": "tab:green"}
PEER_COLORS = {"trpo": "tab:orange", "ppo": "tab:red", "a2c": "tab:purple", "ppo_lstm": "tab:red"}
COLORS = {**{name: FAMILY_COLORS.get(spec.search_space, "tab:gray") for name, spec in ALGOS.items()}, **PEER_COLORS}
# --variant runs (``<algo>:<variant>``), in the order of their names
VARIANT_COLORS = ("tab:cyan", "tab:olive", "tab:brown", "tab:pink", "tab:gray", "black")


def _color(algo: str, algos: Sequence[str]) -> str:
    """The color of an algorithm, or of a variant among ``algos`` (the algorithms drawn together)."""
    if algo in COLORS:
        return COLORS[algo]
    variants = sorted(name for name in algos if name not in COLORS)
    return VARIANT_COLORS[variants.index(algo) % len(VARIANT_COLORS)] if algo in variants else "tab:gray"


# Normalised score = (score - random) / (reference - random), per environment.
# random: mean return of uniformly random actions (measured with Gymnasium 1.x; 200 episodes, 100 for
#   Acrobot and MountainCarContinuous, 30 for HalfCheetah and Walker2d).
# reference: the environment's registered reward_threshold ("solved"), except for those with none:
#   Pendulum-v1: -150 is a pendulum swung up and held, which the zoo's tuned agents reach;
#   Walker2d-v5: 4000, between the 1M-step results of the zoo's tuned PPO (3479) and TRPO (4933) on -v3.
# The zoo's NoVel tasks (velocities masked) share their full task's constants: masking the observation
#   changes neither the random policy's return nor what "solved" means.
NORMALIZATION: dict[str, tuple[float, float]] = {
    "CartPole-v1": (22.7, 475.0),
    "Acrobot-v1": (-497.1, -100.0),
    "Pendulum-v1": (-1255.5, -150.0),
    "MountainCarContinuous-v0": (-33.3, 90.0),
    "LunarLanderContinuous-v3": (-212.5, 200.0),
    "HalfCheetah-v5": (-273.6, 4800.0),
    "Hopper-v5": (18.0, 3800.0),
    "Walker2d-v5": (1.3, 4000.0),
    "CartPoleNoVel-v1": (22.7, 475.0),
    "PendulumNoVel-v1": (-1255.5, -150.0),
    "MountainCarContinuousNoVel-v0": (-33.3, 90.0),
    "LunarLanderNoVel-v3": (-185.5, 200.0),
}
BOOTSTRAP_REPS = 2000
CONFIDENCE = 0.95


def _algo_rank(algo: str) -> tuple[int, str]:
    base = base_algo(algo)
    return (ALGO_ORDER.index(base) if base in ALGO_ORDER else len(ALGO_ORDER), algo)


def _env_order(envs: Sequence[str]) -> list[str]:
    return [env for env in SUITE if env in envs] + sorted(env for env in envs if env not in SUITE)


def load_results(results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """
    ``learning.csv`` and ``learning_curves.csv``, without duplicates.

    A run written twice (rerun after its row was removed) keeps its last row; the curve points of a run
    keep the last value at each step (a run killed between its curve and its row reruns in full).

    :param results_dir: the results directory
    :return: the runs and the curves
    """
    runs = pd.read_csv(results_dir / RUNS_FILE)
    runs = runs.drop_duplicates(subset=["algo", "env", "seed", "timesteps"], keep="last").reset_index(drop=True)
    curves_path = results_dir / CURVES_FILE
    if curves_path.exists():
        curves = pd.read_csv(curves_path)
        curves = curves.drop_duplicates(subset=["algo", "env", "seed", "budget", "timesteps"], keep="last")
        # Only the curves of finished runs
        finished = runs[["algo", "env", "seed", "timesteps"]].rename(columns={"timesteps": "budget"})
        curves = curves.merge(finished, on=["algo", "env", "seed", "budget"], how="inner")
    else:
        curves = pd.DataFrame(columns=list(CURVE_FIELDS))
    return runs, curves


def add_comparison(
    runs: pd.DataFrame, curves: pd.DataFrame, compare_dir: Path, algos: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """
    Add the runs of ``algos`` from another results directory, in the environments and at the budgets of ``runs``.

    :param runs: the runs of this results directory
    :param curves: their curves
    :param compare_dir: the other results directory
    :param algos: the algorithms to take from it
    :return: the runs and the curves with the others added
    """
    other_runs, other_curves = load_results(compare_dir)
    budgets = runs[["env", "timesteps"]].drop_duplicates()
    other_runs = other_runs[other_runs["algo"].isin(algos)].merge(budgets, on=["env", "timesteps"], how="inner")
    finished = other_runs[["algo", "env", "seed", "timesteps"]].rename(columns={"timesteps": "budget"})
    other_curves = other_curves.merge(finished, on=["algo", "env", "seed", "budget"], how="inner")
    return pd.concat([runs, other_runs], ignore_index=True), pd.concat([curves, other_curves], ignore_index=True)


def _rliable_estimates(
    score_dict: dict[str, np.ndarray], func: Callable[[np.ndarray], np.ndarray], reps: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    ``rliable.library.get_interval_estimates``: percentile stratified-bootstrap 95% intervals, reproducible.

    rliable draws its resamples from numpy's global generator (whatever its ``random_state`` says): it is seeded
    for the call, so that the same scores give the same intervals, and the caller's state is put back.

    :param score_dict: per key, scores ``(n_runs, n_tasks)``: runs are resampled within each task
    :param func: what is estimated, from scores of that shape: a 1D array
    :param reps: bootstrap resamples
    :return: the point estimates ``{key: func(scores)}`` and the intervals ``{key: (2, *func's shape)}``
    """
    global_state = np.random.get_state()
    np.random.seed(0)
    try:
        points, intervals = rly.get_interval_estimates(
            score_dict, func, reps=reps, confidence_interval_size=CONFIDENCE, method="percentile"
        )
    finally:
        np.random.set_state(global_state)
    return points, {key: np.asarray(interval) for key, interval in intervals.items()}


def bootstrap_ci(values: np.ndarray, reps: int = BOOTSTRAP_REPS) -> tuple[np.ndarray, np.ndarray]:
    """
    Percentile bootstrap 95% confidence interval of the mean over the first axis (the seeds), at each point: rliable's
    stratified bootstrap, each point a task.

    :param values: ``(n_seeds, n_points)``
    :param reps: bootstrap resamples
    :return: the lower and upper bounds, ``(n_points,)`` each
    """
    _, intervals = _rliable_estimates({"curve": values}, lambda scores: np.mean(scores, axis=0), reps)
    low, high = intervals["curve"]
    return low, high


def _seed_matrix(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The curves of one algorithm's seeds on a common grid of steps (linear interpolation)."""
    per_seed = [seed_curve.sort_values("timesteps") for _, seed_curve in group.groupby("seed")]
    end = min(curve["timesteps"].max() for curve in per_seed)
    grid = np.unique(np.concatenate([curve["timesteps"].to_numpy() for curve in per_seed]))
    grid = grid[grid <= end]
    values = np.stack([np.interp(grid, curve["timesteps"], curve["eval_mean"]) for curve in per_seed])
    return grid, values


def plot_curves(curves: pd.DataFrame, results_dir: Path) -> list[Path]:
    """
    One figure of learning curves per environment.

    :param curves: the evaluation curves
    :param results_dir: where the figures go
    :return: the figures written
    """
    written = []
    for env in _env_order(curves["env"].unique()):
        env_curves = curves[curves["env"] == env]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for algo in sorted(env_curves["algo"].unique(), key=_algo_rank):
            algo_curves = env_curves[env_curves["algo"] == algo]
            budgets = sorted(algo_curves["budget"].unique())
            for index, budget in enumerate(budgets):
                grid, values = _seed_matrix(algo_curves[algo_curves["budget"] == budget])
                label = f"{algo} ({len(values)} seeds)"
                if len(budgets) > 1:
                    label = f"{algo}, {_steps(budget)} ({len(values)} seeds)"
                color = _color(algo, list(env_curves["algo"].unique()))
                style = ("-", "--", ":", "-.")[index % 4]
                ax.plot(grid, values.mean(axis=0), style, color=color, label=label)
                if len(values) > 1:
                    low, high = bootstrap_ci(values)
                    ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
        ax.set_title(f"{env}: deterministic evaluation, mean over seeds (95% bootstrap CI)", fontsize=9)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = results_dir / f"curves_{env}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def _final_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm and environment, the runs of the largest budget (the ones the aggregate compares)."""
    largest = runs.groupby(["algo", "env"])["timesteps"].transform("max")
    return runs[runs["timesteps"] == largest]


# The aggregate's metrics, rliable's, of normalised scores (n_runs, n_envs)
METRICS: dict[str, Callable[[np.ndarray], float]] = {
    "IQM": rly_metrics.aggregate_iqm,
    "Median": rly_metrics.aggregate_median,
    "Mean": rly_metrics.aggregate_mean,
}


def interval_estimates(
    score_dict: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    Point estimates and 95% stratified-bootstrap intervals of ``METRICS`` per algorithm, rliable's, reproducible.

    :param score_dict: per algorithm, normalised scores ``(n_runs, n_envs)``
    :param reps: bootstrap resamples
    :return: the points ``{algo: (n_metrics,)}`` and the intervals ``{algo: (2, n_metrics)}``
    """

    def aggregate(scores: np.ndarray) -> np.ndarray:
        return np.array([metric(scores) for metric in METRICS.values()])

    return _rliable_estimates(score_dict, aggregate, reps)


def aggregate_selection(runs: pd.DataFrame) -> tuple[list[str], list[str]]:
    """
    The algorithms and environments of the aggregate: among the sets of algorithms, the one whose common
    environments (those ``NORMALIZATION`` knows) give the most (algorithm, environment) cells; on a tie,
    the one with more algorithms.

    :param runs: the runs
    :return: the algorithms (in table order) and their common environments; no environments when none is common
    """
    all_algos = sorted(runs["algo"].unique(), key=_algo_rank)
    all_envs = [env for env in _env_order(runs["env"].unique()) if env in NORMALIZATION]
    ran = {algo: {env for env in all_envs if ((runs["algo"] == algo) & (runs["env"] == env)).any()} for algo in all_algos}
    best: tuple[int, int] = (0, 0)
    chosen: tuple[list[str], list[str]] = (all_algos, [])
    for size in range(len(all_algos), 0, -1):
        for subset in itertools.combinations(all_algos, size):
            envs = [env for env in all_envs if all(env in ran[algo] for algo in subset)]
            score = (len(subset) * len(envs), len(subset))
            if envs and score > best:
                best, chosen = score, (list(subset), envs)
    return chosen


def normalized_scores(runs: pd.DataFrame) -> tuple[dict[str, np.ndarray], list[str], int]:
    """
    The normalised final scores per algorithm, on the environments its algorithms all ran and ``NORMALIZATION``
    knows, with as many seeds per environment as every algorithm has there (the lowest seeds).

    The algorithms are those of :func:`aggregate_selection` (an algorithm or variant that ran only some of
    the environments is left out rather than shrinking everyone's set).

    :param runs: the runs (largest budget per algorithm and environment)
    :return: ``{algo: (n_seeds, n_envs)}``, the environments, the number of seeds
    """
    algos, envs = aggregate_selection(runs)
    if not envs:
        return {}, [], 0
    chosen = runs[runs["env"].isin(envs) & runs["algo"].isin(algos)]  # a left-out variant's seeds do not count
    counts = chosen.groupby(["algo", "env"])["seed"].nunique()
    n_seeds = int(counts.min())
    score_dict = {}
    for algo in algos:
        columns = []
        for env in envs:
            cell = runs[(runs["algo"] == algo) & (runs["env"] == env)].sort_values("seed").head(n_seeds)
            random_score, reference = NORMALIZATION[env]
            columns.append((cell["eval_mean"].to_numpy() - random_score) / (reference - random_score))
        score_dict[algo] = np.stack(columns, axis=1)
    return score_dict, envs, n_seeds


def plot_aggregate(runs: pd.DataFrame, results_dir: Path) -> Path | None:
    """
    ``aggregate.png`` and ``aggregate.csv``: IQM, median and mean of the normalised final scores.

    :param runs: the runs
    :param results_dir: where the files go
    :return: the figure, or ``None`` when no environment is common to all algorithms
    """
    score_dict, envs, n_seeds = normalized_scores(_final_runs(runs))
    if not score_dict:
        print("aggregate: no environment that every algorithm ran and NORMALIZATION knows; no aggregate figure")
        return None
    points, intervals = interval_estimates(score_dict)
    algos = list(score_dict)
    rows = []
    for algo in algos:
        for index, metric in enumerate(METRICS):
            low, high = intervals[algo][:, index]
            rows.append(
                {
                    "metric": metric,
                    "algo": algo,
                    "value": points[algo][index],
                    "ci_low": low,
                    "ci_high": high,
                    "envs": " ".join(envs),
                    "seeds": n_seeds,
                }
            )
    pd.DataFrame(rows).to_csv(results_dir / "aggregate.csv", index=False, float_format="%.4f")
    left_out = sorted(set(runs["algo"].unique()) - set(algos), key=_algo_rank)
    print(f"aggregate: {', '.join(algos)} on {', '.join(envs)} ({n_seeds} seeds each)")
    if left_out:
        print(f"aggregate: left out (they did not run all of those environments): {', '.join(left_out)}")

    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 0.5 * len(algos) + 1.6), sharey=True)
    for index, (ax, metric) in enumerate(zip(axes, METRICS, strict=True)):
        for row, algo in enumerate(algos):
            low, high = intervals[algo][:, index]
            color = _color(algo, algos)
            ax.barh(row, high - low, left=low, height=0.6, color=color, alpha=0.75)
            ax.plot([points[algo][index]] * 2, [row - 0.3, row + 0.3], color="black", linewidth=1.5)
        ax.set_yticks(range(len(algos)), algos)
        ax.set_title(metric)
        ax.set_xlabel("normalised score")
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # the first algorithm on top
    fig.suptitle(
        f"Final normalised score, {len(envs)} environments x {n_seeds} seeds, 95% CI (rliable)\n" + ", ".join(envs),
        fontsize=8,
    )
    fig.tight_layout()
    path = results_dir / "aggregate.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _steps(n: float) -> str:
    n = int(n)
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1000 and n % 100 == 0:
        return f"{n / 1000:g}k"
    return str(n)


def _decimals(x: float) -> int:
    return 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2


def _number(x: float, decimals: int | None = None) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:.{_decimals(x) if decimals is None else decimals}f}"


def reproduce_command(
    algo: str, env: str, seeds: Sequence[int], budget: int, eval_freq: int, eval_episodes: int, overrides: str = ""
) -> str:
    """
    The ``learning.py`` command that reruns one row of the table.

    :param algo: the algorithm (``<algo>:<variant>`` for a ``--variant`` run)
    :param env: the environment
    :param seeds: the seeds of the row
    :param budget: the budget
    :param eval_freq: the evaluation interval of the runs
    :param eval_episodes: the episodes per evaluation of the runs
    :param overrides: the variant's overrides as used (``"cg_damping=0.6 damped_step_size=True"``)
    :return: the command
    """
    base, _, variant = algo.partition(":")
    command = (
        f"python benchmarks/learning.py --algos {base} --envs {env} --seeds {' '.join(str(s) for s in seeds)} "
        f"--timesteps {env}={budget}"
    )
    if variant:
        command += f" --variant {variant} {overrides}".rstrip()
    if eval_freq != default_eval_freq(budget):
        command += f" --eval-freq {eval_freq}"
    if eval_episodes != DEFAULT_EVAL_EPISODES:
        command += f" --eval-episodes {eval_episodes}"
    return command


def _host(cell: pd.DataFrame) -> str | None:
    """The machine of a cell's runs (``""`` when not recorded), ``None`` when they ran on several."""
    hosts = set(cell["host"].fillna("")) if "host" in cell else {""}
    return hosts.pop() if len(hosts) == 1 else None


def learning_table(runs: pd.DataFrame) -> str:
    """
    The Markdown results table: one row per environment, algorithm and budget.

    ``std`` is the sample standard deviation over seeds (0 for one seed); steps/s is the median over
    seeds of the training speed (evaluation excluded), and ``vs TRPO`` / ``vs PPO`` its ratio to theirs on
    the same machine (the ``host`` column; no ratio across machines) in the same environment (their largest
    budget). For our algorithms, ``behind`` lists the peers whose mean final evaluation in the same
    environment (largest budgets) is higher, with the gap.
    """
    lines = [
        "| env | algo | final eval (mean ± std) | seeds | budget | steps/s | vs TRPO | vs PPO | behind | hyperparameters |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    commands = []
    final = _final_runs(runs)
    for env in _env_order(runs["env"].unique()):
        env_runs = runs[runs["env"] == env]
        env_final = final[final["env"] == env]
        hosts = env_final["host"].fillna("") if "host" in env_final else pd.Series("", index=env_final.index)
        speed = env_final.assign(host=hosts).groupby(["algo", "host"])["fps"].median()
        final_mean = env_final.groupby("algo")["eval_mean"].mean()
        for algo in sorted(env_runs["algo"].unique(), key=_algo_rank):
            for budget in sorted(env_runs[env_runs["algo"] == algo]["timesteps"].unique()):
                cell = env_runs[(env_runs["algo"] == algo) & (env_runs["timesteps"] == budget)].sort_values("seed")
                scores = cell["eval_mean"].to_numpy(dtype=float)
                std = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
                fps = float(cell["fps"].median())
                host = _host(cell)
                ratios = [
                    f"{fps / speed[peer, host]:.2f}x" if (peer, host) in speed.index else "-" for peer in ("trpo", "ppo")
                ]
                behind = "-"
                if is_ours(algo):
                    ours = float(scores.mean())
                    gaps = [
                        f"{peer} ({_number(final_mean[peer] - ours)})"
                        for peer in sorted(final_mean.index, key=_algo_rank)
                        if not is_ours(peer) and final_mean[peer] > ours
                    ]
                    behind = ", ".join(gaps) if gaps else "none"
                sources = ", ".join(sorted(cell["hyperparams"].astype(str).unique()))
                mean = float(scores.mean())
                score = f"{_number(mean)} ± {_number(std, _decimals(mean))}"
                lines.append(
                    f"| {env} | {algo} | {score} | {len(scores)} | {_steps(budget)} | "
                    f"{_number(fps)} | {ratios[0]} | {ratios[1]} | {behind} | {sources} |"
                )
                eval_freq = int(cell["eval_freq"].iloc[0]) if "eval_freq" in cell else default_eval_freq(int(budget))
                episodes = int(cell["eval_episodes"].iloc[0]) if "eval_episodes" in cell else DEFAULT_EVAL_EPISODES
                seeds = [int(seed) for seed in cell["seed"]]
                overrides = str(cell["hyperparams"].iloc[0]).partition(" with ")[2]
                command = reproduce_command(algo, env, seeds, int(budget), eval_freq, episodes, overrides)
                commands.append(f"- {env}, {algo}, {_steps(budget)}: `{command}`")
    header = [
        "# Learning benchmark",
        "",
        "Final deterministic evaluation (mean return over the evaluation episodes of each seed; mean ± sample std",
        "over seeds). steps/s: training only, evaluation excluded, median over seeds; vs TRPO / vs PPO: its ratio",
        "to theirs in the same environment on the same machine (host; '-' across machines). behind: for our",
        "algorithms, the peers with a higher mean final evaluation in the same environment, and by how much",
        "(largest budget of each).",
        "",
    ]
    return "\n".join([*header, *lines, "", "Reproduce a row (then `python benchmarks/plot_learning.py`):", "", *commands, ""])


def main(argv: Sequence[str] | None = None) -> int:
    """
    Write the curves, the aggregate figure and the table.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    :return: the exit status
    """
    parser = make_parser(__doc__, show_defaults=False)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where learning.csv is, and the outputs go")
    parser.add_argument("--algos", nargs="+", default=None, help="only these algorithms (default: every one in the CSV)")
    parser.add_argument("--compare-dir", type=Path, default=None, help="another results directory to take runs from")
    parser.add_argument(
        "--compare-algos", nargs="+", default=["trpo"], help="the algorithms taken from --compare-dir (same envs and budgets)"
    )
    args = parser.parse_args(argv)
    results_dir: Path = args.results_dir
    if not (results_dir / RUNS_FILE).exists():
        print(f"no {RUNS_FILE} in {results_dir}: run benchmarks/learning.py first", file=sys.stderr)
        return 1
    runs, curves = load_results(results_dir)
    if args.compare_dir is not None:
        runs, curves = add_comparison(runs, curves, args.compare_dir, args.compare_algos)
    if args.algos:
        runs, curves = runs[runs["algo"].isin(args.algos)], curves[curves["algo"].isin(args.algos)]
    if runs.empty:
        print(f"no runs of {args.algos} in {results_dir / RUNS_FILE}", file=sys.stderr)
        return 1
    for path in plot_curves(curves, results_dir):
        print(f"wrote {path}")
    aggregate = plot_aggregate(runs, results_dir)
    if aggregate is not None:
        print(f"wrote {aggregate}")
    table = results_dir / "learning_table.md"
    table.write_text(learning_table(runs))
    print(f"wrote {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
