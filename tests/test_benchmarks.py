"""Smoke test of the learning benchmark: tiny runs, resuming, and the figures and table made from them."""

import csv
import importlib
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_npg.common.vec_env import InfoCopyDummyVecEnv
from sb3_npg.zoo import config

pytest.importorskip("rl_zoo3", reason='the peers take the zoo\'s hyperparameters: pip install "sb3-npg[zoo]"')
pytest.importorskip("sb3_contrib")
pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")
pytest.importorskip("rliable")  # plot_learning.py's bootstrap

BENCHMARKS_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
# The scripts import their shared modules, benchmarks/common/, as `common`: from beside them when they run as scripts
if str(BENCHMARKS_DIR) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS_DIR))
ENV = "CartPole-v1"
BUDGET = 2000
ARGS = [
    "--algos",
    "npg",
    "ppo",
    "--envs",
    ENV,
    "--seeds",
    "0",
    "--timesteps",
    f"{ENV}={BUDGET}",
    "--eval-freq",
    "1000",
    "--eval-episodes",
    "3",
]


def _load(name: str) -> ModuleType:
    # The scripts are not a package: load them from their files, as ``python benchmarks/<name>.py`` would
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def learning() -> ModuleType:
    return _load("learning")


@pytest.fixture(scope="module")
def plot_learning() -> ModuleType:
    return _load("plot_learning")


@pytest.fixture(scope="module")
def common() -> SimpleNamespace:
    # The scripts' shared modules (benchmarks/common/), by name
    names = ("algos", "checkpoints", "cli", "entries", "evaluation", "planner", "results", "run")
    return SimpleNamespace(**{name: importlib.import_module(f"common.{name}") for name in names})


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_scripts_agree(learning, plot_learning, common):
    # plot_learning.py reads the suite and the evaluation's defaults from the modules learning.py runs on
    assert plot_learning.SUITE == common.algos.SUITE
    # Every suite's tasks, and Walker2d-v5 of the 1M-step MuJoCo runs, have normalisation constants
    assert set(plot_learning.NORMALIZATION) == {*common.algos.SUITE, *common.algos.RECURRENT_SUITE, "Walker2d-v5"}
    # A planned run's default evaluation interval and episodes are the ones the table's commands leave out
    args = learning.parse_args(["--algos", "npg", "--envs", ENV, "--seeds", "0", "--timesteps", f"{ENV}={BUDGET}"])
    (spec,), _ = common.planner.plan_runs(args)
    assert (spec.eval_freq, spec.eval_episodes) == (
        common.evaluation.default_eval_freq(BUDGET),
        common.evaluation.DEFAULT_EVAL_EPISODES,
    )
    assert spec.eval_freq == BUDGET // common.evaluation.EVALS_PER_RUN
    command = plot_learning.reproduce_command("npg", ENV, [0], BUDGET, spec.eval_freq, spec.eval_episodes)
    assert "--eval-freq" not in command and "--eval-episodes" not in command
    command = plot_learning.reproduce_command("npg", ENV, [0], BUDGET, spec.eval_freq + 1, spec.eval_episodes + 1)
    assert f"--eval-freq {spec.eval_freq + 1}" in command and f"--eval-episodes {spec.eval_episodes + 1}" in command


def test_algorithms_come_from_the_table(common, plot_learning):
    # Ours are the rows of sb3_npg.zoo.algos.ALGOS, in its order; each suite runs ours, then their peers
    from sb3_npg.zoo.algos import ALGOS

    assert common.algos.OUR_ALGOS == tuple(ALGOS) == ("npg", "klppo", "npg_lstm", "klppo_lstm")
    assert common.algos.DEFAULT_ALGOS == ("npg", "klppo", "trpo", "ppo")
    assert common.algos.RECURRENT_ALGOS == ("npg_lstm", "klppo_lstm", "ppo_lstm")
    assert common.algos.ALGO_ORDER == ("npg", "klppo", "trpo", "ppo", "a2c", "npg_lstm", "klppo_lstm", "ppo_lstm")
    assert {spec.peer for spec in ALGOS.values()} <= set(common.algos.PEER_ALGOS)
    for name in (*common.algos.OUR_ALGOS, *common.algos.PEER_ALGOS):
        class_path = ALGOS[name].class_path if name in ALGOS else common.algos.PEERS[name].class_path
        assert common.algos.algorithm_class(name).__name__ == class_path.rpartition(":")[2]
    with pytest.raises(ValueError, match="unknown algo"):
        common.algos.algorithm_class("sac")
    assert common.algos.is_ours("npg:variant") and common.algos.is_ours("klppo_lstm") and not common.algos.is_ours("trpo")
    # The figures' colours: NPG's family blue, KLPPO's green, the LSTM ones as their MLP ones
    assert plot_learning.COLORS == {
        "npg": "tab:blue", "klppo": "tab:green", "npg_lstm": "tab:blue", "klppo_lstm": "tab:green",
        "trpo": "tab:orange", "ppo": "tab:red", "a2c": "tab:purple", "ppo_lstm": "tab:red",
    }  # fmt: skip


def test_entries(common):
    # Ours from the shipped files, the peers from the zoo's; the zoo stops at the -v4 MuJoCo environments
    entry, source = common.entries.resolve_entry("npg", ENV)
    assert source == f"sb3_npg npg.yml[{ENV}]" and "n_timesteps" in entry
    _, source = common.entries.resolve_entry("trpo", "HalfCheetah-v5")
    assert source == "rl_zoo3 trpo.yml[HalfCheetah-v4]"
    assert common.entries.resolve_entry("trpo", "HalfCheetah-v5", version_fallback=False) is None
    assert common.entries.resolve_entry("ppo", "NoSuchEnvironment-v0") is None
    assert common.cli.parse_timesteps(["Hopper-v5=2e5"]) == {"Hopper-v5": 200_000}


def test_missing_entry_is_skipped(learning, common, tmp_path, capsys):
    args = learning.parse_args(["--algos", "npg", "--envs", "NoSuchEnvironment-v0", "--results-dir", str(tmp_path)])
    runs, skipped = common.planner.plan_runs(args)
    assert runs == [] and len(skipped) == 1 and "NoSuchEnvironment-v0" in skipped[0]


def test_variants_are_planned_with_their_overrides(learning, common, tmp_path):
    variant_args = ["--variant", "trpo", "cg_damping=0.1*d", "damped_step_size=true", "--variant", "shipped"]
    args = learning.parse_args(
        [
            "--algos",
            "npg",
            "--envs",
            "MountainCarContinuous-v0",
            "LunarLanderContinuous-v3",
            "CartPole-v1",
            "--seeds",
            "0",
            "--results-dir",
            str(tmp_path),
            *variant_args,
        ]
    )
    runs, _ = common.planner.plan_runs(args)
    by_key = {(spec.label, spec.env): spec for spec in runs}
    assert len(runs) == 6 and {spec.algo for spec in runs} == {"npg"}
    # <x>*d: x times the action size of a Box action (2 for LunarLanderContinuous), x for a discrete one
    for env_id, damping in [("MountainCarContinuous-v0", 0.1), ("LunarLanderContinuous-v3", 0.2), ("CartPole-v1", 0.1)]:
        spec = by_key[("npg:trpo", env_id)]
        assert spec.entry["cg_damping"] == damping and spec.entry["damped_step_size"] is True
        assert spec.overrides == f"cg_damping={damping} damped_step_size=True"
        assert spec.key == ("npg:trpo", env_id, 0, spec.timesteps)
        shipped = by_key[("npg:shipped", env_id)]
        assert shipped.entry == common.entries.resolve_entry("npg", env_id)[0] and shipped.overrides == ""
    with pytest.raises(SystemExit):
        learning.parse_args(["--variant", "bad", "cg_damping"])
    with pytest.raises(SystemExit):
        learning.parse_args(["--variant", "twice", "--variant", "twice"])


def test_learning_benchmark(learning, plot_learning, tmp_path, capsys):
    assert learning.main([*ARGS, "--results-dir", str(tmp_path)]) == 0

    rows = _rows(tmp_path / "learning.csv")
    assert sorted(row["algo"] for row in rows) == ["npg", "ppo"]
    for row in rows:
        assert {"algo", "env", "seed", "timesteps", "eval_mean", "eval_std", "wall_s", "fps"} <= set(row)
        assert row["env"] == ENV and row["seed"] == "0" and int(row["timesteps"]) == BUDGET
        assert 0 < float(row["eval_mean"]) <= 500 and float(row["eval_std"]) >= 0
        assert float(row["wall_s"]) > 0 and float(row["fps"]) > 0
        assert int(row["steps"]) >= BUDGET and row["eval_episodes"] == "3"
    curves = _rows(tmp_path / "learning_curves.csv")
    for algo in ("npg", "ppo"):
        steps = [int(point["timesteps"]) for point in curves if point["algo"] == algo]
        # Before training, every 1000 steps, and at the end (2048: whole rollouts)
        assert steps[0] == 0 and steps == sorted(steps) and steps[-1] >= BUDGET and len(steps) >= 3

    # A second invocation finds both runs done and leaves the files as they are
    capsys.readouterr()
    assert learning.main([*ARGS, "--results-dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert output.count("skip ") == 2 and "0 runs to do" in output
    assert len(_rows(tmp_path / "learning.csv")) == 2
    assert len(_rows(tmp_path / "learning_curves.csv")) == len(curves)

    assert plot_learning.main(["--results-dir", str(tmp_path)]) == 0
    assert (tmp_path / f"curves_{ENV}.png").stat().st_size > 0
    assert (tmp_path / "aggregate.png").stat().st_size > 0
    table = (tmp_path / "learning_table.md").read_text()
    assert f"| {ENV} | npg |" in table and f"| {ENV} | ppo |" in table
    assert f"--algos npg --envs {ENV} --seeds 0 --timesteps {ENV}={BUDGET}" in table


def test_recurrent_suite(learning, common, tmp_path, capsys):
    # The NoVel tasks, for npg_lstm / klppo_lstm against RecurrentPPO with the zoo's ppo_lstm.yml
    assert learning.main(["--suite", "recurrent", "--seeds", "0", "--dry-run", "--results-dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    for env_id in common.algos.RECURRENT_SUITE:
        for algo in ("npg_lstm", "klppo_lstm", "ppo_lstm"):
            assert f"  {algo} {env_id} seed 0" in output
    assert "rl_zoo3 ppo_lstm.yml[LunarLanderNoVel-v2]" in output  # the zoo's entry predates LunarLander-v3
    assert "sb3_npg npg_lstm.yml[CartPoleNoVel-v1]" in output

    env_id, budget = "CartPoleNoVel-v1", 1024
    args = ["--suite", "recurrent", "--algos", "npg_lstm", "ppo_lstm", "--envs", env_id, "--seeds", "0"]
    args += ["--timesteps", f"{env_id}={budget}", "--eval-freq", "1024", "--eval-episodes", "2"]
    args += ["--results-dir", str(tmp_path)]
    assert learning.main(args) == 0
    rows = _rows(tmp_path / "learning.csv")
    assert sorted(row["algo"] for row in rows) == ["npg_lstm", "ppo_lstm"]
    for row in rows:
        assert row["env"] == env_id and int(row["steps"]) >= budget
        assert 0 < float(row["eval_mean"]) <= 500


def test_speed_measurements():
    """The FVP timings run: ours against TRPO's product on an MLP, and both LSTM unrolls on a real rollout."""
    import torch as th

    fvp_speed = _load("fvp_speed")
    row = fvp_speed.product_timings("Pendulum-v1", 64, th.device("cpu"), repeats=1)
    assert row["n"] == 64
    for key in ("ours_ms", "hand_ms", "trpo_hvp_ms", "forward_backward_ms"):
        assert row[key] > 0.0
    row = fvp_speed.recurrent_product_timings("CartPoleNoVel-v1", 2, 8, th.device("cpu"), repeats=1)
    assert row["n"] == 16 and row["padded_n"] >= 16
    for key in ("ours_ms", "forward_backward_ms", "step_by_step_forward_backward_ms"):
        assert row[key] > 0.0


def test_speed_ratios_only_within_one_machine(plot_learning):
    """vs TRPO compares steps/s of runs on the same host; across machines the table says '-'."""
    import pandas as pd

    def run(algo, env, host, fps):
        return dict(
            algo=algo, env=env, seed=0, timesteps=1000, eval_mean=1.0, eval_std=0.0, fps=fps, hyperparams="x", host=host
        )

    runs = pd.DataFrame(
        [
            run("npg", "Hopper-v5", "16-cpu", 900.0),
            run("trpo", "Hopper-v5", "2-cpu", 600.0),
            run("npg", "Walker2d-v5", "16-cpu", 900.0),
            run("trpo", "Walker2d-v5", "16-cpu", 600.0),
        ]
    )
    table = plot_learning.learning_table(runs)
    cells = {tuple(line.split(" | ")[:2]): line.split(" | ") for line in table.splitlines() if "-v5 | " in line}
    assert cells["| Hopper-v5", "npg"][6] == "-"
    assert cells["| Walker2d-v5", "npg"][6] == "1.50x"


def test_aggregate_leaves_out_partial_algorithms(plot_learning):
    # A variant that ran one environment of three must not shrink the aggregate of the algorithms that ran all
    envs = ["CartPole-v1", "Pendulum-v1", "Acrobot-v1"]
    rows = [{"algo": algo, "env": env} for algo in ("npg", "trpo") for env in envs]
    rows.append({"algo": "npg:variant", "env": "CartPole-v1"})
    algos, chosen_envs = plot_learning.aggregate_selection(pd.DataFrame(rows))
    assert algos == ["npg", "trpo"] and sorted(chosen_envs) == sorted(envs)
    # On a tie of cells, more algorithms win: 3 algorithms x 2 environments over 2 x 3
    rows = [{"algo": algo, "env": env} for algo in ("npg", "trpo") for env in envs]
    rows += [{"algo": "ppo", "env": env} for env in envs[:2]]
    algos, chosen_envs = plot_learning.aggregate_selection(pd.DataFrame(rows))
    assert sorted(algos) == ["npg", "ppo", "trpo"] and sorted(chosen_envs) == sorted(envs[:2])
    # No common environment: nothing to aggregate
    algos, chosen_envs = plot_learning.aggregate_selection(pd.DataFrame([{"algo": "npg", "env": "NoSuchEnv-v0"}]))
    assert chosen_envs == []


def test_aggregate_intervals_are_reproducible(plot_learning):
    # The same scores give the same intervals on every run, and the caller's global numpy state is left alone
    rng = np.random.default_rng(3)
    scores = {"npg": rng.normal(size=(5, 3)), "trpo": rng.normal(size=(5, 3))}
    np.random.seed(7)
    expected_next = np.random.rand()
    np.random.seed(7)
    first = plot_learning.interval_estimates(scores, reps=200)
    assert np.random.rand() == expected_next
    second = plot_learning.interval_estimates(scores, reps=200)
    for algo in scores:
        np.testing.assert_array_equal(first[0][algo], second[0][algo])
        np.testing.assert_array_equal(first[1][algo], second[1][algo])


def test_curve_bands_are_rliable_bootstraps(plot_learning):
    # The band of a curve: the 95% bootstrap interval of the mean over seeds at each point, the same on every call
    values = np.random.default_rng(0).normal(size=(5, 4)) + np.arange(4)
    state = np.random.get_state()
    low, high = plot_learning.bootstrap_ci(values, reps=300)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # the caller's global generator is left alone
    mean = values.mean(axis=0)
    assert low.shape == high.shape == (4,) and np.all(low < mean) and np.all(mean < high)
    assert np.all(low >= values.min(axis=0)) and np.all(high <= values.max(axis=0))
    again = plot_learning.bootstrap_ci(values, reps=300)
    np.testing.assert_array_equal(again[0], low)
    np.testing.assert_array_equal(again[1], high)


def test_aggregate_seeds_ignore_left_out_variants(plot_learning):
    # A variant left out of the aggregate, with one seed on one environment, must not cut the others' seeds to one
    envs = ["CartPole-v1", "Pendulum-v1"]
    rows = [
        {"algo": algo, "env": env, "seed": seed, "eval_mean": 100.0 + seed}
        for algo in ("npg", "trpo")
        for env in envs
        for seed in range(3)
    ]
    rows.append({"algo": "npg:variant", "env": "CartPole-v1", "seed": 0, "eval_mean": 50.0})
    scores, chosen_envs, n_seeds = plot_learning.normalized_scores(pd.DataFrame(rows))
    assert sorted(scores) == ["npg", "trpo"] and sorted(chosen_envs) == sorted(envs)
    assert n_seeds == 3 and scores["npg"].shape == (3, 2)


@pytest.mark.parametrize("algo, env_id", [("npg", "CartPole-v1"), ("npg_lstm", "CartPoleNoVel-v1")])
def test_interrupted_run_resumes_from_its_checkpoint(learning, common, tmp_path, monkeypatch, capsys, algo, env_id):
    # 4 rollouts of 1024 steps, a checkpoint at the start of each from 1024 steps on; the run dies at 3000 steps
    args = [
        "--algos",
        algo,
        "--envs",
        env_id,
        "--seeds",
        "0",
        "--timesteps",
        f"{env_id}=4096",
        "--eval-freq",
        "1000",
        "--eval-episodes",
        "2",
        "--checkpoint-freq",
        "1024",
    ]
    first, second = tmp_path / "first", tmp_path / "second"
    evaluate = common.evaluation.PeriodicEvaluation.evaluate
    checkpoints_dir = common.checkpoints.CHECKPOINTS_DIR

    def dies_at_3000_steps(self):
        if self.model.num_timesteps >= 3000:
            raise RuntimeError("killed")
        evaluate(self)

    monkeypatch.setattr(common.evaluation.PeriodicEvaluation, "evaluate", dies_at_3000_steps)
    assert learning.main([*args, "--results-dir", str(first)]) == 1
    assert not (first / "learning.csv").exists()
    (checkpoint,) = (first / checkpoints_dir).iterdir()
    assert (checkpoint / "model.zip").exists() and (checkpoint / "state.pkl").exists()
    monkeypatch.setattr(common.evaluation.PeriodicEvaluation, "evaluate", evaluate)

    shutil.copytree(first, second)
    capsys.readouterr()
    assert learning.main([*args, "--results-dir", str(first), "--dry-run"]) == 0
    assert "resumes from 2048 steps" in capsys.readouterr().out
    for results in (first, second):
        assert learning.main([*args, "--results-dir", str(results)]) == 0
        assert f"resume {algo} {env_id} seed 0 from 2048 steps" in capsys.readouterr().out
        assert not any((results / checkpoints_dir).iterdir())  # deleted once the run is recorded

    (row,) = _rows(first / "learning.csv")
    assert int(row["steps"]) >= 4096 and float(row["wall_s"]) > 0
    steps = [int(point["timesteps"]) for point in _rows(first / "learning_curves.csv")]
    # The evaluations before the checkpoint (0, then past 1000 and 2000 steps) are kept, then the run goes on
    assert steps[0] == 0 and steps == sorted(set(steps)) and len([s for s in steps if s <= 2048]) == 3 and steps[-1] >= 4096
    # Resuming is deterministic: one checkpoint gives one continuation
    assert _rows(second / "learning.csv")[0]["eval_mean"] == row["eval_mean"]
    assert _rows(second / "learning_curves.csv") == _rows(first / "learning_curves.csv")


@pytest.mark.parametrize("algo", ["klppo", "ppo"])
def test_klppo_diagnostics(algo, capsys):
    diagnostics = _load("klppo_diagnostics")
    assert diagnostics.main(["--algo", algo, "--env", "CartPole-v1", "--updates", "2", "--set", "n_steps=64"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split(" | ")
    assert header[0] == "update" and ("kl_coef" in header) == (algo == "klppo")
    assert [line.split(" | ")[0] for line in lines[2:4]] == ["1", "2"]
    if algo == "klppo":
        # The minibatch KLs straddle the rollout's: the largest is at least the (size-weighted) mean
        spread = lines[4]
        assert spread.startswith("one more update without early stop")
        assert float(spread.split("(")[1].split("x")[0]) >= 1.0
    with pytest.raises(SystemExit):
        diagnostics.main(["--algo", algo, "--updates", "0"])


def test_tuning_study_starts_from_the_entry(tmp_path, capsys, outside_checkout):
    # The study's first trial is the shipped entry; the candidates draw only the update's parameters; the
    # report shows both; a second start carries on with the same study
    optuna = pytest.importorskip("optuna")
    tuning = _load("tuning")
    params, _ = tuning.entry_params("npg", "Ant-v5")
    assert params == dict(
        learning_rate=1e-3, target_kl=0.08, cg_damping=0.8, cg_max_steps=25, n_critic_updates=20, line_search=True,
        damped_step_size=True,
    )  # fmt: skip
    # The trust-region critic's single step lies outside the update space's epochs of Adam (5-30)
    params, reason = tuning.entry_params("npg", "HalfCheetah-v5")
    assert params is None and reason.startswith("n_critic_updates=1")
    params, reason = tuning.entry_params("klppo", "CartPole-v1")  # its learning rate is a schedule
    assert params is None and reason == "learning_rate is 'lin_0.001' in the entry, not a number of the search space"

    args = ["--algo", "npg", "--env", ENV, "--budget", "600", "--trials", "2", "--results-dir", str(tmp_path)]
    args += ["--log-dir", str(tmp_path / "logs")]
    tuning.main(args)
    storage, name = tuning.storage_url(tmp_path, "npg", ENV), tuning.study_name("npg", ENV, "update", 600)
    assert name == "npg-CartPole-v1-update-600"
    study = optuna.load_study(study_name=name, storage=storage)
    entry, candidate = study.trials
    assert entry.user_attrs[tuning.ENTRY_ATTR] is True and entry.params == tuning.entry_params("npg", ENV)[0]
    assert tuning.ENTRY_ATTR not in candidate.user_attrs and "n_steps_pow" not in candidate.params
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "COMPLETE"]
    # The command as typed in the working folder, no interpreter or folder of this machine; the worker still
    # records the entry's hyperparameters beside it
    command = study.user_attrs["command"]
    assert command.startswith(f"sb3-npg train --algo npg --env {ENV} -n 600 -optimize --search-space update")
    assert "--storage sqlite:///npg_CartPole-v1.db" in command and " -f logs " in command
    assert str(tmp_path) not in command and sys.executable not in command
    entry_config = config.load_hyperparams("npg", ENV)
    assert study.user_attrs["n_steps"] == str(entry_config["n_steps"])
    table = (tmp_path / tuning.REPORT).read_text().splitlines()
    assert table[2].startswith(f"| {name} | 2 / 0 / 0 | {entry.value:.1f} (complete) |")

    capsys.readouterr()
    tuning.main([*args[:7], "3", *args[8:], "--dry-run"])  # started again: the same study, the entry not queued twice
    assert "2 trials so far" in capsys.readouterr().out
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 2
    with pytest.raises(SystemExit):
        tuning.main(["--report-typo"])


@pytest.fixture(scope="module")
def cost() -> ModuleType:
    return _load("cost")


def test_cost_plan(cost):
    # The floors first, one per distinct stack; trpo:same-rollout takes NPG's rollout and normalisation
    measurements, skipped = cost.plan_env("HalfCheetah-v5", cost.CONFIGS)
    labels = [measurement.label for measurement in measurements]
    assert skipped == [] and labels[-5:] == ["npg", "trpo", "trpo:same-rollout", "klppo", "ppo"]
    floors = labels[:-5]
    assert len(floors) == len(set(floors)) and {f"floor:{m.stack}" for m in measurements[-5:]} == set(floors)
    by_label = {measurement.label: measurement for measurement in measurements}
    npg, same = by_label["npg"].entry, by_label["trpo:same-rollout"].entry
    assert (same["n_envs"], same["n_steps"]) == (npg.get("n_envs", 1), npg.get("n_steps", 2048))
    assert by_label["trpo:same-rollout"].stack == by_label["npg"].stack
    # Each on the copies its own command line builds: ours and trpo:same-rollout in sb3-npg's, the peers in SB3's
    classes = {label: by_label[label].vec_env_cls for label in ("npg", "trpo:same-rollout", "klppo", "trpo", "ppo")}
    assert classes == dict.fromkeys(["npg", "trpo:same-rollout", "klppo"], InfoCopyDummyVecEnv) | dict.fromkeys(
        ["trpo", "ppo"], DummyVecEnv
    )
    assert by_label["trpo"].stack.endswith("+sb3") and not by_label["npg"].stack.endswith("+sb3")
    assert all(by_label[f"floor:{m.stack}"].vec_env_cls is m.vec_env_cls for m in measurements[-5:])
    assert by_label["trpo:same-rollout"].hyperparams.startswith("rl_zoo3 trpo.yml[HalfCheetah-v4] with n_envs=")

    trpo = ({"n_steps": 1024, "n_envs": 2, "batch_size": 128, "normalize": True, "gamma": 0.99}, "t")
    entry, described = cost.same_rollout_entry(trpo, ({"n_envs": 4, "n_steps": 96, "batch_size": 64}, "n"))
    assert entry["batch_size"] == 128 and "normalize" not in entry and entry["gamma"] == 0.99  # 128 divides 384
    assert described == "t with n_envs=4 n_steps=96 normalize=False of n"
    entry, described = cost.same_rollout_entry(trpo, ({"n_envs": 4, "n_steps": 100, "batch_size": 80, "normalize": True}, "n"))
    assert entry["batch_size"] == 80 and entry["normalize"] is True and described.endswith("batch_size=80 of n")
    assert cost.env_stack({"n_envs": 1, "normalize": "dict(norm_obs=True, norm_reward=False)", "gamma": 0.9}) == (
        "1env+norm(norm_obs=True,norm_reward=False)"
    )


def test_cost_variants_change_our_entries_only(cost):
    variants = [("e8", {"n_envs": "8", "n_steps": "64"})]
    measurements, _ = cost.plan_env("HalfCheetah-v5", ["floor", "klppo", "ppo"], variants)
    by_label = {measurement.label: measurement for measurement in measurements}
    assert set(by_label) >= {"klppo", "ppo", "klppo:e8", "floor:8envs+norm"} and "ppo:e8" not in by_label
    variant, shipped = by_label["klppo:e8"], by_label["klppo"]
    assert (variant.entry["n_envs"], variant.entry["n_steps"]) == (8, 64) and variant.algo == "klppo"
    assert {k: v for k, v in variant.entry.items() if k not in ("n_envs", "n_steps")} == {
        k: v for k, v in shipped.entry.items() if k not in ("n_envs", "n_steps")
    }
    assert variant.hyperparams == f"{shipped.hyperparams} with n_envs=8 n_steps=64"


def test_cost_report_ratios(cost):
    # Two rounds each: the cheaper (least total) with its split, the medians, the ratios to the floor and the peers
    def row(algo, round_, rollout, train, steps=2048, n_envs=2, n_steps=1024, updates=1, stack="2envs+norm"):
        return dict(
            env="E-v0", algo=algo, round=round_, budget=2000, steps=steps, n_envs=n_envs, n_steps=n_steps,
            updates=updates, stack=stack, rollout_s=rollout, train_s=train, total_s=rollout + train, seed=0,
            hyperparams=f"{algo} entry", host="h",
        )  # fmt: skip

    rows = [
        row("floor:2envs+norm", 1, 0.2, 0.0, n_steps="", updates=0),
        row("floor:2envs+norm", 2, 0.3, 0.0, n_steps="", updates=0),
        row("npg", 1, 1.0, 1.0),
        row("npg", 2, 0.8, 0.8),
        row("trpo", 1, 1.0, 2.0),
        row("trpo", 2, 1.0, 3.0),
        row("trpo:same-rollout", 1, 1.0, 2.0),
        row("klppo", 1, 1.0, 4.0, steps=4096, n_envs=1, n_steps=512, updates=8, stack="1env+norm"),
        row("ppo", 1, 1.0, 3.0, steps=4096, n_envs=1, n_steps=512, updates=8, stack="1env+norm"),
    ]
    rows = [{key: str(value) for key, value in item.items()} for item in rows]
    (summaries,) = cost.summarise(rows).values()
    npg = summaries["npg"]
    assert npg.rounds == 2 and npg.best == pytest.approx((0.8 * 100_000 / 2048, 0.8 * 100_000 / 2048, 1.6 * 100_000 / 2048))
    assert npg.median[2] == pytest.approx(1.8 * 100_000 / 2048) and npg.train_per_update("best") == pytest.approx(0.8)
    table = cost.report(rows)
    lines = {line.split(" | ")[0]: line.split(" | ") for line in table.splitlines() if line.startswith("| ")}
    assert lines["| npg"][1:4] == ["2 x 1024", "2048", "2"] and lines["| npg"][8] == "4.00x (3.60x)"  # 0.8 / 0.2, 0.9 / 0.25
    assert lines["| klppo"][8] == "-"  # no floor of its stack
    assert "steps per CPU-second (above 1: NPG is cheaper per step): 1.88x (1.94x)" in table  # 3 / 1.6, 3.5 / 1.8
    assert (
        "a rollout batch of 2048 samples for both" in table
        and "cheaper): 0.40x (0.45x); CPU s per update 0.80 / 2.00" in table
    )
    assert "KLPPO (shipped) / PPO (zoo), total CPU s per 100k steps (below 1: KLPPO is cheaper): 1.25x (1.25x)" in table
    assert [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")][2:] == [
        "| floor:2envs+norm", "| npg", "| trpo", "| trpo:same-rollout", "| klppo", "| ppo",
    ]  # fmt: skip


def test_cost_benchmark(cost, tmp_path, capsys):
    # The whole chain on CartPole-v1: NPG (2 copies, npg.yml) and PPO (8 copies, the zoo's ppo.yml), a floor each
    env_id = "CartPole-v1"
    args = ["--envs", env_id, "--algos", "floor", "npg", "ppo", "--steps", "256", "--rounds", "1"]
    args += ["--results-dir", str(tmp_path)]
    assert cost.main(args) == 0
    rows = _rows(tmp_path / cost.CSV_FILE)
    by_algo = {row["algo"]: row for row in rows}
    assert len(rows) == 4 and sorted(by_algo) == ["floor:2envs", "floor:8envs+sb3", "npg", "ppo"]
    for row in rows:
        assert row["env"] == env_id and row["round"] == "1" and row["budget"] == "256"
        rollout, train, total = float(row["rollout_s"]), float(row["train_s"]), float(row["total_s"])
        assert rollout > 0 and train >= 0 and rollout + train == pytest.approx(total, abs=1e-5)
        assert int(row["steps"]) >= 256 and int(row["steps"]) % int(row["n_envs"]) == 0
    # Whole rollouts: NPG 2 x 1024 takes 2048 steps, PPO 8 x 32 takes 256
    assert (by_algo["npg"]["n_envs"], by_algo["npg"]["steps"], by_algo["npg"]["updates"]) == ("2", "2048", "1")
    assert (by_algo["ppo"]["n_envs"], by_algo["ppo"]["steps"], by_algo["ppo"]["updates"]) == ("8", "256", "1")
    assert float(by_algo["floor:8envs+sb3"]["train_s"]) == 0 and by_algo["npg"]["stack"] == "2envs"
    table = (tmp_path / cost.TABLE_FILE).read_text()
    assert (
        f"## {env_id}" in table and "| npg | 2 x 1024 | 2048 | 1 |" in table and "| floor:8envs+sb3 | 8 | 256 | 1 |" in table
    )
    assert "npg " in table.split("environment-only floor")[1] and "of floor:8envs+sb3" in table

    # Run again: nothing to do; a second round of NPG alone adds only that row; --report rewrites the table
    capsys.readouterr()
    assert cost.main(args) == 0
    assert "0 measurements to do, 4 already in cost.csv" in capsys.readouterr().out
    assert len(_rows(tmp_path / cost.CSV_FILE)) == 4
    assert cost.main([*args[:2], "--algos", "npg", "--steps", "256", "--rounds", "2", "--results-dir", str(tmp_path)]) == 0
    assert "1 measurements to do, 1 already in cost.csv" in capsys.readouterr().out
    rows = _rows(tmp_path / cost.CSV_FILE)
    assert len(rows) == 5 and (rows[-1]["algo"], rows[-1]["round"]) == ("npg", "2")
    (tmp_path / cost.TABLE_FILE).unlink()
    assert cost.main(["--report", "--results-dir", str(tmp_path)]) == 0
    assert "| npg | 2 x 1024 | 2048 | 2 |" in (tmp_path / cost.TABLE_FILE).read_text()


def test_evaluation_is_sb3s_eval_callback(common, monkeypatch):
    # The evaluation is SB3's EvalCallback: VecNormalize statistics copied by SB3's sync_envs_normalization, the
    # returns of evaluate_policy; the eval environment's VecNormalize is frozen, its rewards raw
    from stable_baselines3.common import callbacks
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import sync_envs_normalization, unwrap_vec_normalize

    from sb3_npg import NPG
    from sb3_npg.zoo import config

    assert issubclass(common.evaluation.PeriodicEvaluation, callbacks.EvalCallback)
    entry = {"n_envs": 2, "normalize": True}
    env_id, seed, episodes = "Pendulum-v1", 0, 3

    def eval_env():
        return config.make_env_from_hyperparams(entry, env_id, seed=seed + common.evaluation.EVAL_SEED_OFFSET, n_envs=episodes)

    model = NPG("MlpPolicy", config.make_env_from_hyperparams(entry, env_id, seed=seed), n_steps=64, seed=seed)
    model.learn(128)  # statistics of 130 observations: not the eval environment's own
    synced = []

    def spy(env, other):
        synced.append((env, other))
        sync_envs_normalization(env, other)

    monkeypatch.setattr(callbacks, "sync_envs_normalization", spy)
    periodic = common.evaluation.PeriodicEvaluation(eval_env(), eval_freq=64, n_episodes=episodes)
    eval_normalize = unwrap_vec_normalize(periodic.eval_env)
    assert eval_normalize is not None and not eval_normalize.training and not eval_normalize.norm_reward
    periodic.init_callback(model)
    periodic.evaluate()
    assert synced == [(model.get_env(), periodic.eval_env)]
    train_normalize = model.get_vec_normalize_env()
    assert train_normalize is not None and train_normalize.obs_rms.count > 100
    np.testing.assert_array_equal(eval_normalize.obs_rms.mean, train_normalize.obs_rms.mean)
    assert eval_normalize.obs_rms is not train_normalize.obs_rms  # a copy

    # The same episodes through evaluate_policy itself give the recorded mean and std
    reference = eval_env()
    sync_envs_normalization(model.get_env(), reference)
    reference_normalize = unwrap_vec_normalize(reference)
    reference_normalize.training, reference_normalize.norm_reward = False, False
    mean, std = evaluate_policy(model, reference, n_eval_episodes=episodes, deterministic=True)
    assert periodic.records == [(128, pytest.approx(mean), pytest.approx(std))] and std > 0
    assert periodic.last_mean_reward == pytest.approx(mean) and periodic.eval_seconds > 0

    # A checkpoint's state gives the evaluations back, the next one on the same grid of steps
    restored = common.evaluation.PeriodicEvaluation(eval_env(), eval_freq=64, n_episodes=episodes)
    restored.restore(periodic.state())
    assert restored.records == periodic.records and restored.state() == periodic.state() == {
        "records": periodic.records,
        "eval_seconds": periodic.eval_seconds,
        "next_eval": 192,
    }
    assert restored.best_mean_reward == pytest.approx(mean)


def test_results_csv_round_trip(common, tmp_path):
    path = tmp_path / "runs.csv"
    assert common.results.read_rows(path) == [] and common.results.finished_runs(path) == set()
    row = {"algo": "npg:x", "env": ENV, "seed": 1, "timesteps": 2000, "eval_mean": 12.5, "note": "a, b"}
    common.results.append_rows(path, [row], ["algo", "env", "seed", "timesteps", "eval_mean", "note"])
    # An existing file keeps its header: a column it lacks is dropped, one a row lacks is left empty
    common.results.append_rows(
        path, [{"algo": "ppo", "env": ENV, "seed": 0, "timesteps": 2000, "extra": 1}], ["algo", "extra"]
    )
    assert common.results.read_rows(path) == [
        {"algo": "npg:x", "env": ENV, "seed": "1", "timesteps": "2000", "eval_mean": "12.5", "note": "a, b"},
        {"algo": "ppo", "env": ENV, "seed": "0", "timesteps": "2000", "eval_mean": "", "note": ""},
    ]
    assert common.results.finished_runs(path) == {("npg:x", ENV, 1, 2000), ("ppo", ENV, 0, 2000)}

    rewritten = tmp_path / "sub" / "rows.csv"
    common.results.write_rows(rewritten, [{"a": "1", "b": "x y"}], ["a", "b"])
    common.results.write_rows(rewritten, [{"a": "2", "b": ""}, {"a": "3", "b": "z"}], ["a", "b"])
    assert common.results.read_rows(rewritten) == [{"a": "2", "b": ""}, {"a": "3", "b": "z"}]
    assert sorted(item.name for item in rewritten.parent.iterdir()) == ["rows.csv"]  # no temporary file left
    assert common.results.RUN_FIELDS[:6] == ("algo", "env", "seed", "timesteps", "eval_mean", "eval_std")
    host = common.results.host_description()
    assert host.split("-cpu ")[0].isdigit() and common.results.utc_now().endswith("+00:00")


def test_identity_and_controller_files_round_trip(tmp_path):
    identity = _load("identity")
    rows = [
        {"algo": "ppo", "task": "Discrete", "seed": 1, "returns": [12.5, 100.0], "wall_s": 3.5},
        {"algo": "klppo", "task": "Discrete", "seed": 0, "returns": [90.0, 99.5], "wall_s": 2.0},
    ]
    path = tmp_path / "identity" / "identity.csv"
    identity.write_results(path, rows)
    assert identity.read_results(path) == sorted(rows, key=lambda row: (row["algo"], row["task"], row["seed"]))
    assert path.read_text().splitlines()[:2] == ["algo,task,seed,returns,wall_s", "klppo,Discrete,0,90.0 99.5,2.0"]

    controller = _load("klppo_controller")
    row = {
        "controller": "adaptive", "seed": 0, "in_band_fraction": 0.75, "kl_median": 0.0125, "final_kl_coef": 2.5,
        "final_lr_multiplier": 1.0, "wall_time_s": 10.5, "kls": [0.01, 0.02],
    }  # fmt: skip
    path = tmp_path / "controller.csv"
    controller.write_results(path, [row, {**row, "controller": "tracking", "seed": 1}])
    assert controller.read_results(path) == [{**row, "controller": "tracking", "seed": 1}, row]  # CONTROLLERS order
    assert path.read_text().splitlines()[2] == "adaptive,0,0.75,0.0125,2.5,1,10.5,0.01 0.02"
    assert controller.read_results(tmp_path / "none.csv") == []


def test_other_scripts_list_the_table_s_algorithms(cost):
    assert cost.CONFIGS == ("floor", "npg", "trpo", "trpo:same-rollout", "klppo", "ppo") and cost.OUR_ALGOS == ("npg", "klppo")
    assert _load("tuning").ALGOS == ("npg", "klppo")
    diagnostics = _load("klppo_diagnostics")
    assert (diagnostics.KLPPO_ALGOS, diagnostics.PEERS) == (("klppo", "klppo_lstm"), ("ppo", "ppo_lstm"))


def test_rollout_step_benchmark(tmp_path, outside_checkout):
    rollout_step = _load("rollout_step")
    # The two models collect the same rollout, so the benchmark times the step alone
    models = rollout_step.rollout_models("HalfCheetah-v5")
    ours, sb3 = (models[name].rollout_buffer for name in ("ours", "sb3"))
    assert not isinstance(models["sb3"].policy, type(models["ours"].policy))
    for field in ("observations", "actions", "values", "log_probs", "rewards"):
        assert np.array_equal(getattr(ours, field), getattr(sb3, field)), field
    args = ["--envs", "HalfCheetah-v5", "--steps", "2048", "--rounds", "2", "--results-dir", str(tmp_path)]
    assert rollout_step.main(args) == 0
    table = (tmp_path / "rollout_step.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| HalfCheetah-v5 |"))
    cells = row.strip("| ").split(" | ")
    assert len(cells) == 4 and all(float(cell.split(" ")[0]) > 0 for cell in cells[1:])
