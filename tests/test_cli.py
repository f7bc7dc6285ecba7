"""The ``sb3-npg`` command line, driven in subprocesses as a user would."""

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml

from sb3_npg.zoo.cli import main, with_defaults
from sb3_npg.zoo.config import hyperparams_path, load_hyperparams

pytest.importorskip("rl_zoo3", reason="the command line needs the zoo extra: pip install 'sb3-npg[zoo]'")

ALGOS = ["npg", "klppo"]
# One torch thread per process keeps the runs fast on small machines
FAST = ["--num-threads", "1"]


def command() -> list[str]:
    """The console script installed with this interpreter when there is one, else the module."""
    script = Path(sys.executable).parent / ("sb3-npg.exe" if os.name == "nt" else "sb3-npg")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sb3_npg"]


def run(args: list[str], cwd: Path, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``sb3-npg <args>`` in ``cwd`` (and check that it succeeded)."""
    return run_side_by_side([args], cwd, timeout, check)[0]


def run_side_by_side(
    commands: list[list[str]], cwd: Path, timeout: float = 300, check: bool = True
) -> list[subprocess.CompletedProcess]:
    """Run several ``sb3-npg`` commands at the same time and wait for all of them."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    with contextlib.ExitStack() as stack:
        # Outputs go to files: a full pipe would stall a process until its turn to be read
        outputs = [
            (stack.enter_context(tempfile.TemporaryFile("w+")), stack.enter_context(tempfile.TemporaryFile("w+")))
            for _ in commands
        ]
        processes = [
            subprocess.Popen([*command(), *args], cwd=cwd, env=env, stdout=out, stderr=err, text=True)
            for args, (out, err) in zip(commands, outputs, strict=True)
        ]
        results = []
        for args, process, (out, err) in zip(commands, processes, outputs, strict=True):
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(process.args, process.returncode, out.read(), err.read())
            if check:
                assert result.returncode == 0, (
                    f"sb3-npg {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                )
            results.append(result)
    return results


def load_study(storage: str, study_name: str):
    optuna = pytest.importorskip("optuna")
    if storage.endswith(".log"):
        backend = optuna.storages.journal.JournalFileBackend(storage)
        return optuna.load_study(study_name=study_name, storage=optuna.storages.JournalStorage(backend))
    return optuna.load_study(study_name=study_name, storage=storage)


def call(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the command line in this process (``sys.argv`` is restored afterwards)."""
    monkeypatch.setattr(sys, "argv", ["sb3-npg", *args])
    main(args)


def test_help(monkeypatch, capsys):
    # -X importtime lists every module imported: the package, its zoo helpers and the command line
    # itself must not need rl-zoo3 or Optuna (an optional extra) until a command runs
    argv = [sys.executable, "-X", "importtime", "-m", "sb3_npg", "--help"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ("train", "enjoy", "plot_train", "plot_from_file", "all_plots", "--storage"):
        assert name in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert {"sb3_npg.zoo.cli", "sb3_npg.zoo.registry", "sb3_npg.zoo.config", "sb3_npg.zoo.algos"} <= imported
    assert not {name for name in imported if name.split(".")[0] in ("rl_zoo3", "optuna")}
    with pytest.raises(SystemExit) as exit_info:
        call(["train", "--help"], monkeypatch)
    assert exit_info.value.code == 0
    train_help = capsys.readouterr().out
    assert "sb3-npg train" in train_help and "--conf-file" in train_help and "npg" in train_help and "klppo" in train_help


@pytest.mark.parametrize(
    "args, message",
    [([], "usage: sb3-npg"), (["fly"], "command must be one of"), (["-x"], "unrecognized arguments: -x")],
)
def test_bad_command(args, message, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        call(args, monkeypatch)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_algo(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        call(["train", "--algo", "nope", "--env", "CartPole-v1"], monkeypatch)
    assert exit_info.value.code == 2
    assert "--algo" in capsys.readouterr().err


def test_default_arguments():
    conf = str(hyperparams_path("npg"))
    one_thread = ["--num-threads", "1"]
    expected = ["--env", "CartPole-v1", "--algo", "npg", "--conf-file", conf, *one_thread]
    assert with_defaults("train", ["--env", "CartPole-v1"]) == expected
    klppo_conf = str(hyperparams_path("klppo"))
    assert with_defaults("train", ["--algo=klppo"]) == ["--algo=klppo", "--conf-file", klppo_conf, *one_thread]
    # A user's configuration wins, however it is spelled
    for given in (["-conf", "my.yml"], ["--conf-file=my.yml"], ["--conf", "my.yml"]):
        assert with_defaults("train", ["--algo", "npg", *given]) == ["--algo", "npg", *given, *one_thread]
    # The zoo's own algorithms keep the zoo's files
    assert with_defaults("train", ["--algo", "ppo"]) == ["--algo", "ppo", *one_thread]
    assert with_defaults("enjoy", ["--env", "CartPole-v1"]) == ["--env", "CartPole-v1", "--algo", "npg", *one_thread]
    assert with_defaults("record_video", ["--env", "CartPole-v1"]) == ["--env", "CartPole-v1", "--algo", "npg"]
    assert with_defaults("plot_train", ["-a", "npg"]) == ["-a", "npg"]
    # A user's thread count wins, however it is spelled
    for given in (["--num-threads", "4"], ["--num-threads=0"], ["--num-thr", "2"]):
        assert with_defaults("enjoy", ["--algo", "npg", *given]) == ["--algo", "npg", *given]


@pytest.mark.parametrize("flags, threads", [([], 1), (["--num-threads", "0"], 3)])
def test_torch_threads_of_training(flags, threads, tmp_path, monkeypatch):
    # One torch thread per training process unless --num-threads says otherwise (0: torch's default, kept)
    th.set_num_threads(3)  # the autouse fixture restores the test's own count afterwards
    args = ["train", "--algo", "npg", "--env", "CartPole-v1", "-n", "64", "-f", str(tmp_path / "logs"), "--seed", "0"]
    call([*args, "-params", "n_steps:32", "batch_size:64", "n_critic_updates:1", *flags], monkeypatch)
    assert list((tmp_path / "logs" / "npg").glob("CartPole-v1_1/CartPole-v1.zip"))  # it trained
    assert th.get_num_threads() == threads


def test_train_enjoy_optimize_end_to_end(tmp_path):
    # The shipped commands as a user runs them, on tiny budgets (not slow: .ci/lowest runs it on the lowest
    # supported rl_zoo3, the normal suite on the newest): train, replay, tune two trials, re-train trial 0
    logs = tmp_path / "logs"
    small = ["-params", "n_steps:32", "batch_size:64", "n_critic_updates:2"]
    run(["train", "--env", "CartPole-v1", "-n", "128", "-f", str(logs), "--seed", "0", *small, *FAST], tmp_path)
    run_dir = logs / "npg" / "CartPole-v1_1"  # --algo npg by default
    assert (run_dir / "CartPole-v1.zip").is_file()
    with open(run_dir / "CartPole-v1" / "args.yml") as file:
        assert dict(yaml.load(file, Loader=yaml.UnsafeLoader))["conf_file"] == str(hyperparams_path("npg"))
    result = run(["enjoy", "--env", "CartPole-v1", "-f", str(logs), "--no-render", "-n", "100", *FAST], tmp_path)
    assert f"Loading {run_dir / 'CartPole-v1.zip'}" in result.stdout

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # --seed 43 draws two cheap trials (128-step rollouts, 64x64 networks)
    tune = ["train", "--env", "CartPole-v1", "-n", "300", "-f", str(tmp_path / "tune"), "--seed", "43", *FAST]
    tune += ["-optimize", "--n-trials", "2", "--sampler", "random", "--pruner", "none", "--no-optim-plots"]
    run([*tune, "--eval-episodes", "2", "--storage", storage, "--study-name", "e2e"], tmp_path)
    study = load_study(storage, "e2e")
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "COMPLETE"]
    assert {"n_steps_pow", "target_kl", "net_arch"} <= set(study.trials[0].params)
    assert (study.user_attrs["algo"], study.user_attrs["env"], study.user_attrs["search_space"]) == (
        "npg",
        "CartPole-v1",
        "full",
    )
    assert list((tmp_path / "tune" / "npg").glob("report_CartPole-v1_2-trials-300-random-none_*.csv"))

    retrain = ["train", "--env", "CartPole-v1", "-n", "64", "-f", str(tmp_path / "retrain"), "--seed", "0", *FAST]
    run([*retrain, "--storage", storage, "--study-name", "e2e", "--trial-id", "0"], tmp_path)
    with open(tmp_path / "retrain" / "npg" / "CartPole-v1_1" / "CartPole-v1" / "config.yml") as file:
        config = dict(yaml.load(file, Loader=yaml.UnsafeLoader))
    assert config["n_steps"] == study.trials[0].user_attrs["n_steps"]
    assert config["target_kl"] == pytest.approx(study.trials[0].params["target_kl"])


@pytest.mark.slow
@pytest.mark.parametrize("algo", ALGOS)
def test_train_then_enjoy(algo, tmp_path):
    logs = tmp_path / "logs"
    args = ["train", "--algo", algo, "--env", "CartPole-v1", "-n", "2000", "-f", str(logs), "--seed", "0", *FAST]
    if algo == "npg":  # TensorBoard and periodic evaluation too
        args += ["-tb", str(tmp_path / "runs"), "--eval-freq", "1000", "--eval-episodes", "2"]
    run(args, tmp_path)

    # Where the zoo puts things: logs/<algo>/<env>_<run>/
    run_dir = logs / algo / "CartPole-v1_1"
    assert (run_dir / "CartPole-v1.zip").is_file()
    with open(run_dir / "CartPole-v1" / "config.yml") as file:
        config = dict(yaml.load(file, Loader=yaml.UnsafeLoader))
    assert config == load_hyperparams(algo, "CartPole-v1")  # our file, not the zoo's
    with open(run_dir / "CartPole-v1" / "args.yml") as file:
        saved_args = dict(yaml.load(file, Loader=yaml.UnsafeLoader))
    assert saved_args["conf_file"] == str(hyperparams_path(algo))
    if algo == "npg":
        assert (run_dir / "best_model.zip").is_file() and (run_dir / "evaluations.npz").is_file()
        assert list((tmp_path / "runs" / "CartPole-v1").glob("NPG_1/events.out.tfevents.*"))

    # Replay it headless: enjoy finds the latest run of this algorithm in the log folder
    result = run(
        ["enjoy", "--algo", algo, "--env", "CartPole-v1", "-f", str(logs), "--no-render", "-n", "200", *FAST], tmp_path
    )
    assert f"Loading {run_dir / 'CartPole-v1.zip'}" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("algo", ALGOS)
def test_optimize(algo, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # --seed 7 draws two cheap trials (short rollouts, small networks) for both algorithms
    args = ["train", "--algo", algo, "--env", "CartPole-v1", "-n", "500", "-f", str(tmp_path / "logs"), "--seed", "7"]
    args += ["-optimize", "--n-trials", "2", "--n-jobs", "1", "--sampler", "random", "--pruner", "none"]
    args += ["--storage", storage, "--study-name", f"{algo}-cartpole", "--no-optim-plots", "--eval-episodes", "2", *FAST]
    run(args, tmp_path)

    study = load_study(storage, f"{algo}-cartpole")
    assert len(study.trials) == 2
    assert all(trial.state.name == "COMPLETE" for trial in study.trials), [trial.state for trial in study.trials]
    assert {"n_steps_pow", "target_kl", "net_arch"} <= set(study.trials[0].params)
    assert list((tmp_path / "logs" / algo).glob("report_CartPole-v1_2-trials-500-random-none_*.csv"))


@pytest.mark.slow
def test_plots(tmp_path, monkeypatch, capsys):
    # The zoo's plotting commands on two short runs of logged evaluations and monitor files
    logs = tmp_path / "logs"
    rng = np.random.default_rng(0)
    for run_id in (1, 2):
        run_dir = logs / "npg" / f"CartPole-v1_{run_id}"
        run_dir.mkdir(parents=True)
        timesteps = np.array([1000, 2000, 3000])
        np.savez(
            run_dir / "evaluations.npz", timesteps=timesteps, results=rng.uniform(0, 500, (3, 2)), ep_lengths=np.ones((3, 2))
        )
        rows = "\n".join(f"{reward:.1f},{int(reward)},{step:.2f}" for step, reward in enumerate(rng.uniform(10, 500, 20)))
        (run_dir / "0.monitor.csv").write_text('#{"t_start": 0.0, "env_id": "CartPole-v1"}\nr,l,t\n' + rows + "\n")

    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    try:
        call(["plot_train", "-a", "npg", "-e", "CartPole-v1", "-f", str(logs), "-w", "5"], monkeypatch)
        call(
            ["all_plots", "-a", "npg", "-e", "CartPole-v1", "-f", str(logs), "--no-display", "-o", str(tmp_path / "res")],
            monkeypatch,
        )
        assert "CartPole-v1" in capsys.readouterr().out
        assert (tmp_path / "res.pkl").is_file()
        call(["plot_from_file", "-i", str(tmp_path / "res.pkl"), "-o", str(tmp_path / "plot")], monkeypatch)
        assert list(tmp_path.glob("plot*"))
    finally:
        plt.close("all")


@pytest.mark.slow
def test_record_video(tmp_path, monkeypatch):
    # The zoo's record_video (a script, run as __main__) finds our algorithm in the registry
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    from sb3_npg import NPG

    run_dir = tmp_path / "logs" / "npg" / "CartPole-v1_1"
    run_dir.mkdir(parents=True)
    NPG("MlpPolicy", "CartPole-v1", n_steps=64, seed=0).save(run_dir / "CartPole-v1")
    call(["record_video", "--env", "CartPole-v1", "-f", str(tmp_path / "logs"), "-n", "50"], monkeypatch)
    assert list((run_dir / "videos").glob("final-model-npg-CartPole-v1-*.mp4"))
