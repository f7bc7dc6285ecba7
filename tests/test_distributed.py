"""
Distributed tuning: several ``sb3-npg train -optimize`` workers on one study (a PostgreSQL server or a journal
file), a worker killed in the middle of a trial, and storages or studies that cannot be used.

The PostgreSQL tests need a server: ``.ci/postgres`` installs and starts one and prints its URL, which they read
from ``SB3_NPG_TEST_POSTGRES_URL``. Under ``CI=true`` a missing server fails them; elsewhere they are skipped.
"""

import contextlib
import datetime
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sb3_npg.zoo.tuning import HeartbeatOptions, TuningError, TuningOptions, open_rdb_storage, split_tuning_args

pytest.importorskip("rl_zoo3", reason="the command line needs the zoo extra: pip install 'sb3-npg[zoo]'")
optuna = pytest.importorskip("optuna")

from test_cli import FAST, call, command, load_study, run, run_side_by_side  # noqa: E402

POSTGRES_URL_VARIABLE = "SB3_NPG_TEST_POSTGRES_URL"
# Flags shared by every tuning run: tiny trials, random sampler, no pruning, no plots
TUNE = ["--env", "CartPole-v1", "-n", "500", "-optimize", "--sampler", "random", "--pruner", "none"]
TUNE += ["--no-optim-plots", "--eval-episodes", "2", *FAST]
# Seeds whose first trials are cheap (short rollouts, small networks, few epochs), by algorithm: worker A, worker B
SEEDS = {"npg": (7, 12), "klppo": (2, 5)}
FINISHED = ("COMPLETE", "PRUNED")  # the states the zoo counts as done


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """A failure under CI (the PostgreSQL tests must run there), else a skip saying how to run them."""
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so the PostgreSQL tests must run (.ci/run starts the server)")
    pytest.skip(f"{reason}; to run these tests: export {POSTGRES_URL_VARIABLE}=$(.ci/postgres)")


@pytest.fixture(scope="module")
def postgres_url() -> str:
    """The URL of the test database; a failure under CI when there is none, else a skip saying how to get one."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if not url:
        unavailable(f"{POSTGRES_URL_VARIABLE} is not set")
    try:
        open_rdb_storage(url).engine.dispose()
    except TuningError as error:
        unavailable(f"the test PostgreSQL server cannot be used: {error}")
    return url


@pytest.fixture
def study_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A study name of its own for each test, so that runs never meet; the study is deleted afterwards."""
    name = f"test-{request.node.name}-{uuid.uuid4().hex[:8]}"
    yield name
    if "postgres_url" in request.fixturenames:
        with contextlib.suppress(KeyError):  # a test may stop before its study is created
            optuna.delete_study(study_name=name, storage=request.getfixturevalue("postgres_url"))


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """The URL of a database of its own, created empty (no Optuna tables yet) on the test server, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url)
    connection_info = {"host": server.host, "port": server.port, "user": server.username, "password": server.password}
    connection_info["dbname"] = server.database
    name = f"sb3npg_fresh_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(**connection_info, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege as error:
        unavailable(f"user {server.username!r} may not create databases ({error}); .ci/postgres grants it CREATEDB")
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(**connection_info, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def storage_for(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "journal":
        return str(tmp_path / "study.log")  # an Optuna journal file: concurrent writers on one machine
    return request.getfixturevalue("postgres_url")


def workers_of(trials: list) -> list[str]:
    return [trial.user_attrs["worker"] for trial in trials]


@pytest.mark.slow
@pytest.mark.parametrize("algo, kind", [("npg", "postgres"), ("klppo", "postgres"), ("npg", "journal")])
def test_two_workers_share_one_study(algo, kind, tmp_path, study_name, request):
    # Distributed tuning: two processes (standing for two machines) run the same command against one study
    storage = storage_for(kind, tmp_path, request)
    args = ["train", "--algo", algo, *TUNE, "--storage", storage, "--study-name", study_name]
    seed_a, seed_b = SEEDS[algo]
    commands = [
        [*args, "--n-trials", "2", "--seed", str(seed_a), "-f", str(tmp_path / "logs_a")],
        [*args, "--n-trials", "1", "--seed", str(seed_b), "-f", str(tmp_path / "logs_b")],
    ]
    run_side_by_side(commands, tmp_path)

    study = load_study(storage, study_name)
    assert len(study.trials) == 3  # exactly the 2 + 1 trials the workers asked for
    assert all(trial.state.name in FINISHED for trial in study.trials), [trial.state for trial in study.trials]
    workers = workers_of(study.trials)
    assert sorted(workers.count(worker) for worker in set(workers)) == [1, 2]  # both workers, 2 and 1 trials
    assert all(worker.startswith(f"{socket.gethostname()}:") for worker in workers)
    assert (study.user_attrs["algo"], study.user_attrs["env"]) == (algo, "CartPole-v1")

    # Re-train the best trial from the study (trial 0 too: the plug-in makes the zoo load it)
    best = study.best_trial
    logs = tmp_path / "retrain"
    retrain = ["train", "--algo", algo, "--env", "CartPole-v1", "-n", "256", "-f", str(logs), "--seed", "0", *FAST]
    run([*retrain, "--storage", storage, "--study-name", study_name, "--trial-id", str(best.number)], tmp_path)
    with open(logs / algo / "CartPole-v1_1" / "CartPole-v1" / "config.yml") as file:
        config = dict(yaml.load(file, Loader=yaml.UnsafeLoader))
    assert config["n_steps"] == best.user_attrs["n_steps"]
    assert config["gamma"] == pytest.approx(best.user_attrs["gamma"])
    assert config["target_kl"] == pytest.approx(best.params["target_kl"])
    assert (logs / algo / "CartPole-v1_1" / "CartPole-v1.zip").is_file()


# A worker process: ``sb3-npg`` (its entry point, in a process of its own) started once every worker has
# imported what it needs, so that all of them reach the empty database at the same instant. Arguments: the file
# to create when ready, the file to wait for, then those of ``sb3-npg``.
WORKER_AT_BARRIER = """
import sys, time
from pathlib import Path
import optuna, rl_zoo3.train, sqlalchemy  # the slow imports, before the barrier
import sb3_npg.zoo.train
from sb3_npg.zoo.cli import main
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.002)
main(sys.argv[3:])
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_workers_started_together_on_an_empty_database(kind, tmp_path, request):
    # The README's recipe: the same -optimize command on every machine. Started at the same instant on a database
    # without Optuna's tables, the workers all create them; every worker must join the study and run its trial.
    n_workers = 3
    if kind == "postgres":
        storage = request.getfixturevalue("fresh_postgres_url")
    else:
        storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["train", "--algo", "npg", *TUNE, "--search-space", "update", "--n-trials", "1", "--storage", storage]
    args += ["--study-name", "together"]
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    go = tmp_path / "go"
    workers = []
    for index in range(n_workers):
        ready = tmp_path / f"ready_{index}"
        argv = [sys.executable, "-c", WORKER_AT_BARRIER, str(ready), str(go), *args, "--seed", str(index)]
        argv += ["-f", str(tmp_path / f"logs_{index}")]
        log = open(tmp_path / f"worker_{index}.txt", "w")  # noqa: SIM115 (closed below)
        workers.append((subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT), log, ready))
    try:
        wait_for(lambda: all(ready.exists() for _, _, ready in workers), 300, "the workers to start", interval=0.05)
        go.touch()
        for process, _, _ in workers:
            process.wait(timeout=300)
    finally:
        for process, log, _ in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    for index, (process, _, _) in enumerate(workers):
        assert process.returncode == 0, (tmp_path / f"worker_{index}.txt").read_text()[-3000:]

    study = load_study(storage, "together")
    assert len(study.trials) == n_workers
    assert all(trial.state.name in FINISHED for trial in study.trials), [trial.state for trial in study.trials]
    expected = {f"{socket.gethostname()}:{process.pid}" for process, _, _ in workers}
    assert set(workers_of(study.trials)) == expected  # one trial of every worker
    if kind == "postgres":
        optuna.storages.RDBStorage(storage).engine.dispose()  # the schema is whole: Optuna opens it as it is


def test_schema_collision_is_retried_then_reported(tmp_path, monkeypatch):
    # A worker whose creation of Optuna's tables collides with another's opens the storage again; after
    # SCHEMA_TRIES collisions in a row it stops with one line. Any other database error is not retried.
    import sqlalchemy.exc

    from sb3_npg.zoo import tuning

    duplicate = Exception('duplicate key value violates unique constraint "pg_type_typname_nsp_index"')
    collision = sqlalchemy.exc.IntegrityError("CREATE TYPE studydirection", {}, duplicate)
    denied = sqlalchemy.exc.ProgrammingError("CREATE TABLE studies", {}, Exception("permission denied for schema public"))
    rdb_storage = optuna.storages.RDBStorage
    calls: list[int] = []

    def failing(errors):
        def build(*args, **kwargs):
            calls.append(1)
            if len(calls) <= len(errors):
                raise errors[len(calls) - 1]
            return rdb_storage(*args, **kwargs)

        return build

    monkeypatch.setattr(tuning, "SCHEMA_RETRY_WAIT", 0.0)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    monkeypatch.setattr(optuna.storages, "RDBStorage", failing([collision] * (tuning.SCHEMA_TRIES - 1)))
    assert isinstance(open_rdb_storage(url), rdb_storage)
    assert len(calls) == tuning.SCHEMA_TRIES

    calls.clear()
    monkeypatch.setattr(optuna.storages, "RDBStorage", failing([collision] * tuning.SCHEMA_TRIES))
    with pytest.raises(TuningError, match="cannot create Optuna's tables in --storage sqlite:///") as error:
        open_rdb_storage(url)
    assert f"collided with this worker {tuning.SCHEMA_TRIES} times (duplicate key value" in str(error.value)
    assert "\n" not in str(error.value) and len(calls) == tuning.SCHEMA_TRIES

    calls.clear()
    monkeypatch.setattr(optuna.storages, "RDBStorage", failing([denied]))
    with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
        open_rdb_storage(url)
    assert len(calls) == 1


def test_schema_lock_held_too_long_is_one_line(postgres_url, monkeypatch):
    # A worker that holds the lock on the creation of Optuna's tables for too long (stuck, say) is reported
    import sqlalchemy

    from sb3_npg.zoo import tuning

    monkeypatch.setattr(tuning, "SCHEMA_LOCK_TIMEOUT", 1)
    engine = sqlalchemy.create_engine(postgres_url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as holder:
            holder.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": tuning.SCHEMA_LOCK_KEY})
            with pytest.raises(TuningError) as error:
                open_rdb_storage(postgres_url)
        open_rdb_storage(postgres_url).engine.dispose()  # the lock went with its connection
    finally:
        engine.dispose()
    message = str(error.value)
    assert "lock timeout" in message and "another worker has been creating Optuna's tables for over 1 s" in message
    assert "\n" not in message and "sb3npg:***@" in message


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.slow
def test_killed_worker_trial_is_retried(postgres_url, study_name, tmp_path):
    # Two workers share a budget of 3 trials; worker A is killed (SIGKILL) in the middle of its first trial.
    # Its trial must become FAIL once it has missed its heartbeats for the grace period, be queued again with
    # the same hyperparameters, and be finished by worker B; the budget is still 3 finished trials.
    interval, grace = 1, 3
    # Trials of 2000 steps take seconds (longer than the grace period): worker B cannot finish the budget before
    # the dead trial goes stale. Worker A's first trial (seed 4: 4096-step rollouts, 256x256 networks) is long.
    args = ["train", "--algo", "npg", *TUNE, "-n", "2000", "--storage", postgres_url, "--study-name", study_name]
    args += ["--max-total-trials", "3", "--heartbeat-interval", str(interval), "--grace-period", str(grace)]
    args += ["--max-retry", "1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    processes = []
    for name, seed in (("a", 4), ("b", 12)):
        log = open(tmp_path / f"worker_{name}.txt", "w")  # noqa: SIM115 (closed below)
        argv = [*command(), *args, "--seed", str(seed), "-f", str(tmp_path / f"logs_{name}")]
        processes.append((subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    (worker_a, _), (worker_b, _) = processes
    storage = open_rdb_storage(postgres_url)
    try:
        worker_a_id = f"{socket.gethostname()}:{worker_a.pid}"

        def running_trial_of_a():
            try:
                study = optuna.load_study(study_name=study_name, storage=storage)
            except KeyError:  # not created yet
                return None
            running = [trial for trial in study.trials if trial.state.name == "RUNNING"]
            return next((trial for trial in running if trial.user_attrs.get("worker") == worker_a_id), None)

        wait_for(running_trial_of_a, 240, "worker A to start a trial")
        time.sleep(2 * interval)  # at least one heartbeat recorded
        worker_a.send_signal(signal.SIGKILL)
        worker_a.wait(timeout=30)
        killed_at = datetime.datetime.now()
        killed = running_trial_of_a()
        assert killed is not None, "worker A was between two trials when it was killed"
        worker_b.wait(timeout=300)
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    assert worker_a.returncode == -signal.SIGKILL
    assert worker_b.returncode == 0, (tmp_path / "worker_b.txt").read_text()[-3000:]

    study = optuna.load_study(study_name=study_name, storage=postgres_url)  # the study is still loadable
    states = {trial.number: trial.state.name for trial in study.trials}
    dead = study.trials[killed.number]
    assert dead.state.name == "FAIL"
    # Failed only after it had missed its beats (no earlier than the grace period after its last beat, which
    # came at most one interval before the kill), by worker B when it ended or started its next trial
    assert dead.datetime_complete is not None
    assert dead.datetime_complete >= killed_at + datetime.timedelta(seconds=grace - interval - 1)
    longest_trial = max(t.duration for t in study.trials if t.duration is not None and t.state.name == "COMPLETE")
    assert dead.datetime_complete <= killed_at + datetime.timedelta(seconds=grace + 5) + longest_trial
    retries = [trial for trial in study.trials if trial.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1, states
    retry = retries[0]
    assert retry.state.name == "COMPLETE" and retry.params == dead.params
    assert retry.user_attrs["worker"] == f"{socket.gethostname()}:{worker_b.pid}"
    # Nothing else lost: every other trial finished, and the budget counts finished trials only
    assert [number for number, state in states.items() if state not in FINISHED] == [killed.number], states
    assert sum(state in FINISHED for state in states.values()) == 3
    assert study.best_trial.state.name == "COMPLETE"


def test_dead_worker_does_not_use_up_the_budget(tmp_path):
    # --max-total-trials counts RUNNING trials (so that workers do not overshoot it). A dead worker's trial
    # stays RUNNING until Optuna fails it, which it does only before starting a trial: a worker ending its
    # last trial would count it and stop, leaving it unretried. The experiment manager's budget callback fails
    # stale trials before counting.
    from sb3_npg.zoo.exp_manager import BUDGET_STATES, StaleTrialsMaxTrialsCallback

    storage = open_rdb_storage(f"sqlite:///{tmp_path / 'study.db'}", HeartbeatOptions(interval=1, grace_period=2))
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # heartbeats are meant for optimize(), as below
        dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # a trial whose worker died
    storage.record_heartbeat(dead._trial_id)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            time.sleep(3.5)  # the dead trial goes stale meanwhile (SQLite's clock counts whole seconds)
        return x

    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.PRUNED)
    assert counted == BUDGET_STATES  # the zoo's rule
    budget = StaleTrialsMaxTrialsCallback(2)
    assert isinstance(budget, optuna.study.MaxTrialsCallback)
    study.optimize(objective, n_trials=10, callbacks=[budget])

    states = [trial.state.name for trial in study.trials]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"]
    assert study.trials[2].system_attrs["failed_trial"] == 0  # the retry of the dead trial
    assert study.trials[2].params == dead.params


def test_joining_worker_retries_a_dead_trial_within_the_budget(tmp_path, monkeypatch):
    # The experiment manager opens the storage with the heartbeat flags, fails the dead trials of a study it joins
    # and counts --max-total-trials with them failed: here a dead worker's trial, then this worker's two trials,
    # the first of them the retry of the dead one (same hyperparameters)
    from sb3_npg.zoo.hyperparams_opt import sample_npg_update_params

    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = open_rdb_storage(url, HeartbeatOptions(interval=1, grace_period=2))
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    for key, value in (("algo", "npg"), ("env", "CartPole-v1"), ("search_space", "update")):
        study.set_user_attr(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # heartbeats are meant for optimize()
        dead = study.ask()
    sample_npg_update_params(dead, 1, 2, {})
    storage.record_heartbeat(dead._trial_id)
    storage.engine.dispose()
    time.sleep(3.5)  # its grace period passes (SQLite's clock counts whole seconds)

    args = ["train", "--algo", "npg", *TUNE, "-n", "64", "-params", "n_steps:32", "batch_size:64", "n_critic_updates:1"]
    args += ["--storage", url, "--study-name", "s", "--search-space", "update", "--max-total-trials", "2"]
    call([*args, "--heartbeat-interval", "1", "--grace-period", "2", "-f", str(tmp_path / "logs")], monkeypatch)

    study = load_study(url, "s")
    assert [trial.state.name for trial in study.trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert study.trials[1].system_attrs["failed_trial"] == 0 and study.trials[1].params == study.trials[0].params
    assert "failed_trial" not in study.trials[2].system_attrs


def test_tuning_flags():
    args = ["--env", "CartPole-v1", "--max-total-trials", "5", "--grace-period=300", "--search-space", "update"]
    options, rest = split_tuning_args(args)
    assert rest == ["--env", "CartPole-v1", "--max-total-trials", "5"]  # the zoo's flags are left alone
    heartbeat = options.heartbeat
    assert (heartbeat.interval, heartbeat.grace, heartbeat.max_retry, options.search_space) == (60, 300, 3, "update")
    defaults, _ = split_tuning_args([])
    heartbeat = defaults.heartbeat
    assert (heartbeat.interval, heartbeat.grace, heartbeat.max_retry, heartbeat.enabled) == (60, 180, 3, True)
    assert defaults.search_space == "full"
    assert HeartbeatOptions(interval=10).grace == 30
    assert not HeartbeatOptions(interval=0).enabled
    bad_flags = (["--heartbeat-interval", "-1"], ["--grace-period", "0"], ["--max-retry", "x"], ["--search-space", "all"])
    for bad in bad_flags:
        with pytest.raises(SystemExit):
            split_tuning_args(bad)
    with pytest.raises(ValueError, match="grace period must be longer than the heartbeat interval"):
        HeartbeatOptions(interval=60, grace_period=60)
    with pytest.raises(ValueError, match="search_space must be one of full, update, got 'all'"):
        TuningOptions(search_space="all")

    # SQLite gets the same heartbeat and retries as PostgreSQL
    storage = open_rdb_storage("sqlite:///:memory:", HeartbeatOptions(5, 20, 2))
    assert (storage.get_heartbeat_interval(), storage.grace_period) == (5, 20)
    # Optuna 4.0 (the lowest supported) names the retry callback failed_trial_callback, later versions
    # heartbeat_stale_trial_callback
    stale_trial_callback = getattr(storage, "get_heartbeat_stale_trial_callback", None) or storage.get_failed_trial_callback
    assert stale_trial_callback()._max_retry == 2
    assert open_rdb_storage("sqlite:///:memory:", HeartbeatOptions(interval=0)).get_heartbeat_interval() is None


def tune_in_process(args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, algo: str = "npg") -> str:
    """Run ``sb3-npg train -optimize`` in this process; it must fail, and its message is returned."""
    with pytest.raises(SystemExit) as exit_info:
        call(["train", "--algo", algo, *TUNE, "--n-trials", "1", "-f", str(tmp_path / "logs"), *args], monkeypatch)
    message = exit_info.value.code
    assert isinstance(message, str) and "\n" not in message
    return message


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresq://user:secret@127.0.0.1/optuna", "unknown database type 'postgresq'; use postgresql://"),
        ("postgres-db.example.org/optuna", "is neither a database URL nor a .log file"),
        ("postgresql://user:secret@127.0.0.1:1/optuna", "check the host and port in the URL"),
        ("sqlite:///no/such/folder/study.db", "check that the folder of the SQLite file exists"),
    ],
)
def test_unusable_storage_is_one_line(url, expected, monkeypatch, tmp_path):
    message = tune_in_process(["--storage", url, "--study-name", "s"], monkeypatch, tmp_path)
    assert message.startswith("sb3-npg train: ") and expected in message
    assert "secret" not in message  # passwords are not printed


def test_missing_driver_is_one_line(monkeypatch, tmp_path):
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here")
    url = "postgresql+psycopg2://user:secret@127.0.0.1/optuna"
    message = tune_in_process(["--storage", url, "--study-name", "s"], monkeypatch, tmp_path)
    assert "needs the Python module 'psycopg2', which is not installed: pip install psycopg2-binary" in message


def test_wrong_password_is_one_line(postgres_url, study_name, monkeypatch, tmp_path):
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(password="not-the-password").render_as_string(hide_password=False)
    message = tune_in_process(["--storage", url, "--study-name", study_name], monkeypatch, tmp_path)
    assert "password authentication failed" in message and "check the user name and password" in message
    assert "not-the-password" not in message


def test_unusable_study_is_refused(tmp_path, monkeypatch):
    # Studies the zoo must not write to: one that minimizes, one made for another algorithm or environment
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(storage=storage, study_name="minimize", direction="minimize")
    for name, algo, env_id in (
        ("klppo", "klppo", "CartPole-v1"),
        ("pendulum", "npg", "Pendulum-v1"),
        ("new", "npg", "CartPole-v1"),
    ):
        optuna.create_study(storage=storage, study_name=name, direction="maximize").set_user_attr("algo", algo)
        optuna.load_study(storage=storage, study_name=name).set_user_attr("env", env_id)

    message = tune_in_process(["--storage", storage, "--study-name", "minimize"], monkeypatch, tmp_path)
    assert "has direction minimize, but tuning maximizes the mean reward: use another --study-name" in message
    message = tune_in_process(["--storage", storage, "--study-name", "klppo"], monkeypatch, tmp_path)
    assert "was created for --algo klppo --env CartPole-v1, not --algo npg --env CartPole-v1" in message
    message = tune_in_process(["--storage", storage, "--study-name", "pendulum"], monkeypatch, tmp_path)
    assert "was created for --algo npg --env Pendulum-v1, not --algo npg --env CartPole-v1" in message
    for name in ("minimize", "klppo", "pendulum"):  # nothing was written to them
        study = optuna.load_study(storage=storage, study_name=name)
        assert not study.trials and "command" not in study.user_attrs

    # Re-training a trial checks the study too, and the trial number
    retrain = ["train", "--algo", "npg", "--env", "CartPole-v1", "-n", "64", "-f", str(tmp_path / "logs")]
    retrain += ["--storage", storage]
    for name, trial_id, expected in (
        ("klppo", "0", "was created for --algo klppo"),
        ("nope", "0", "there is no study 'nope'"),
        ("new", "3", "study 'new' has no trials yet"),
    ):
        with pytest.raises(SystemExit, match=expected):
            call([*retrain, "--study-name", name, "--trial-id", trial_id], monkeypatch)


@pytest.mark.parametrize("algo", ["npg", "klppo"])
def test_update_search_space_tunes_on_top_of_the_entry(algo, tmp_path, monkeypatch):
    # --search-space update draws the update's parameters only; every other hyperparameter is the entry's
    from sb3_npg.zoo.config import algorithm_class, load_hyperparams

    entry = load_hyperparams(algo, "CartPole-v1")
    cls = algorithm_class(algo)
    built: list[dict] = []
    original_init = cls.__init__

    def recording_init(self, *args, **kwargs):
        built.append(kwargs)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", recording_init)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    update = ["--algo", algo, *TUNE, "--n-trials", "2", "-f", str(tmp_path / "logs"), "--storage", storage]
    call(["train", *update, "--study-name", "update", "--search-space", "update", "--seed", "3"], monkeypatch)

    study = optuna.load_study(storage=storage, study_name="update")
    assert study.user_attrs["search_space"] == "update"
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "COMPLETE"]
    assert len(built) == 2
    for trial, kwargs in zip(study.trials, built, strict=True):
        assert "target_kl" in trial.params and not {"n_steps_pow", "net_arch", "one_minus_gamma"} & set(trial.params)
        assert kwargs["target_kl"] == pytest.approx(trial.params["target_kl"])
        assert (kwargs["n_steps"], kwargs["gamma"], kwargs["gae_lambda"]) == (
            entry["n_steps"],
            entry["gamma"],
            entry["gae_lambda"],
        )
    monkeypatch.undo()

    # A study keeps its search space; one made before the flag (trials, no attribute) searched the full space
    message = tune_in_process(["--storage", storage, "--study-name", "update"], monkeypatch, tmp_path, algo)
    assert "searches --search-space update, not full: use another --study-name" in message
    old = optuna.create_study(storage=storage, study_name="old", direction="maximize")
    old.set_user_attr("algo", "npg")
    old.set_user_attr("env", "CartPole-v1")
    old.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=1.0))
    message = tune_in_process(["--storage", storage, "--study-name", "old", "--search-space", "update"], monkeypatch, tmp_path)
    assert "searches --search-space full, not update" in message
    # The zoo's own algorithms have only their full space
    with pytest.raises(SystemExit, match="--search-space update is for --algo npg, klppo, npg_lstm, klppo_lstm; --algo ppo"):
        call(
            ["train", "--algo", "ppo", *TUNE, "--n-trials", "1", "-f", str(tmp_path / "logs"), "--search-space", "update"],
            monkeypatch,
        )


def test_command_line_error_is_one_line(tmp_path):
    # What the user sees: one line on stderr after the zoo's own output, exit status 1, no traceback
    argv = [*command(), "train", "--algo", "npg", *TUNE, "--storage", "postgresq://u:p@db/optuna", "--study-name", "s"]
    result = subprocess.run([*argv, "-f", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("sb3-npg train: --storage postgresq://u:***@db/optuna: unknown")
