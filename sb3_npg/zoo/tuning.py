"""
Distributed, fault-tolerant tuning for ``sb3-npg train -optimize``: storages, study checks and this package's flags.

The zoo hands ``--storage`` to Optuna as it is: a URL string, or a journal file for a path ending in ``.log``.
:class:`sb3_npg.zoo.exp_manager.NPGExperimentManager` opens it with :func:`open_storage` instead and passes the
storage object to Optuna, so that

* a relational storage (PostgreSQL, MySQL, SQLite) is opened with a heartbeat: a worker that dies in the
  middle of a trial (killed, preempted, out of memory) stops beating, the trial is marked ``FAIL`` once
  ``grace_period`` seconds have passed without a beat, and a copy of it (same hyperparameters) is queued
  for the next worker, up to ``max_retry`` times (Optuna's ``RetryHeartbeatStaleTrialCallback``);
* ``--max-total-trials`` does not count a dead worker's trial: stale trials are failed (:func:`fail_stale_trials`)
  before every count, so their retries are run and the budget is still spent on finished trials;
* a study is used only when it maximizes and was created for the same algorithm, environment and search
  space (:func:`check_study`: recorded in its user attributes ``algo``, ``env`` and ``search_space`` when it
  is created);
* ``--search-space update`` tunes only the update's parameters of our algorithms, on top of the
  hyperparameter file's entry (:mod:`sb3_npg.zoo.hyperparams_opt`);
* workers started at the same instant on a database without Optuna's tables all join the study: on
  PostgreSQL they create the tables in turn, under an advisory lock; on any database, a worker whose creation
  of the tables collides with another's opens the storage again after a short random wait;
* a storage that cannot be used (a misspelt or unreachable URL, a wrong password, a missing driver) is
  reported in one line (:class:`TuningError`), not as a database traceback.

Optuna's journal file storage has no heartbeat: there a killed worker's trial stays ``RUNNING``.
Importing this module imports neither rl-zoo3 nor Optuna.
"""

import argparse
import contextlib
import random
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

# Defaults suited to RL trials of minutes to hours: one small database write per worker and minute;
# a dead worker's trial is retried about three minutes after its last beat; three missed beats in a row
# (a busy database, a network blip) are tolerated before a live trial would be given up.
DEFAULT_HEARTBEAT_INTERVAL = 60
GRACE_PERIOD_BEATS = 3
# A trial whose process dies three times is likely the cause (e.g. hyperparameters that run out of memory)
DEFAULT_MAX_RETRY = 3
# Seconds to wait for a database server to answer before reporting it unreachable
CONNECT_TIMEOUT = 10
# Optuna creates its tables when it opens a storage, with no guard against another process doing the same: workers
# started together on an empty database collide (a duplicate table, type or version row). On PostgreSQL every worker
# opens the storage under this advisory lock (a key of the database's own, the same in every worker), waiting at most
# SCHEMA_LOCK_TIMEOUT seconds for another worker to finish; on any database a collision is retried after a random
# wait of up to SCHEMA_RETRY_WAIT times the number of tries so far, SCHEMA_TRIES times in all.
SCHEMA_LOCK_KEY = 0x5B3_0E_9C  # "sb3 npg", any 64-bit integer would do
SCHEMA_LOCK_TIMEOUT = 120
SCHEMA_TRIES = 8
SCHEMA_RETRY_WAIT = 0.5
# What the errors of such a collision say (PostgreSQL, SQLite, MySQL), in lower case
SCHEMA_RACE_REASONS = ("already exists", "duplicate key", "unique constraint", "duplicate entry", "database is locked")

# The Python packages that provide SQLAlchemy's database drivers, by module name
DRIVER_PACKAGES = {
    "psycopg": '"psycopg[binary]" (installed with sb3-npg[zoo])',
    "psycopg2": "psycopg2-binary",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
}
STORAGE_FORMS = (
    "postgresql://user:password@host:port/database, mysql+pymysql://user:password@host/database, "
    "sqlite:///file.db or a journal file path ending in .log"
)


# ``--search-space`` values (the samplers are in :data:`sb3_npg.zoo.hyperparams_opt.SEARCH_SPACES`)
SEARCH_SPACE_NAMES = ("full", "update")
DEFAULT_SEARCH_SPACE = "full"


class TuningError(Exception):
    """A storage or study that cannot be used for tuning; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class HeartbeatOptions:
    """
    How workers of a relational storage prove that their trials are alive, and how dead trials are retried.

    :param interval: seconds between two heartbeats of a running trial; 0 turns heartbeats and retries off
    :param grace_period: seconds without a heartbeat after which a running trial counts as dead
        (default: three intervals); must exceed ``interval``
    :param max_retry: how many times the trial of a dead worker is queued again (0: never)
    """

    interval: int = DEFAULT_HEARTBEAT_INTERVAL
    grace_period: int | None = None
    max_retry: int = DEFAULT_MAX_RETRY

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise ValueError(f"heartbeat interval must be >= 0 seconds (0 turns it off), got {self.interval}")
        if self.grace_period is not None and self.interval > 0 and self.grace_period <= self.interval:
            raise ValueError(
                f"grace period must be longer than the heartbeat interval ({self.interval} s), got {self.grace_period}"
            )
        if self.max_retry < 0:
            raise ValueError(f"max retry must be >= 0, got {self.max_retry}")

    @property
    def enabled(self) -> bool:
        """Whether running trials send heartbeats."""
        return self.interval > 0

    @property
    def grace(self) -> int:
        """The grace period in seconds (three intervals unless given)."""
        return self.grace_period if self.grace_period is not None else GRACE_PERIOD_BEATS * self.interval


@dataclass(frozen=True)
class TuningOptions:
    """
    This package's flags of ``train -optimize``.

    :param heartbeat: heartbeat and retry settings of relational storages
    :param search_space: ``"full"`` (the update, rollout, discounting and network, as the zoo searches) or
        ``"update"`` (the update's parameters alone, the rest from the hyperparameter file's entry)
    """

    heartbeat: HeartbeatOptions = field(default_factory=HeartbeatOptions)
    search_space: str = DEFAULT_SEARCH_SPACE

    def __post_init__(self) -> None:
        if self.search_space not in SEARCH_SPACE_NAMES:
            raise ValueError(f"search_space must be one of {', '.join(SEARCH_SPACE_NAMES)}, got {self.search_space!r}")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from error
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return value


def tuning_parser(prog: str = "sb3-npg train") -> argparse.ArgumentParser:
    """
    The flags this package adds to ``train``: the search space of ``-optimize``, and fault tolerance with
    relational storages.

    :param prog: the program name shown in messages
    :return: a parser of ``--search-space``, ``--heartbeat-interval``, ``--grace-period`` and ``--max-retry`` only
    """
    parser = argparse.ArgumentParser(prog=prog, usage=argparse.SUPPRESS, add_help=False, allow_abbrev=False)
    space = parser.add_argument_group("search space of -optimize (sb3-npg)")
    space.add_argument(
        "--search-space",
        choices=SEARCH_SPACE_NAMES,
        default=DEFAULT_SEARCH_SPACE,
        help="full: the update's parameters, rollout length, minibatch size, discount, GAE lambda and network, as "
        "the zoo searches; update: the update's parameters alone (NPG: target_kl, cg_damping, cg_max_steps, "
        "damped_step_size, line_search, the critic's learning_rate and n_critic_updates; KLPPO: target_kl, "
        "kl_coef, kl_adaptation, learning_rate, n_epochs), everything else from the hyperparameter file's "
        f"entry; only for our algorithms (default: {DEFAULT_SEARCH_SPACE})",
    )
    group = parser.add_argument_group("fault tolerance of -optimize with a PostgreSQL, MySQL or SQLite --storage (sb3-npg)")
    group.add_argument(
        "--heartbeat-interval",
        type=_non_negative_int,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between heartbeats of a running trial; 0 turns heartbeats and retries off "
        f"(default: {DEFAULT_HEARTBEAT_INTERVAL})",
    )
    group.add_argument(
        "--grace-period",
        type=_positive_int,
        default=None,
        metavar="SECONDS",
        help=f"a trial without a heartbeat for this long is failed and retried "
        f"(default: {GRACE_PERIOD_BEATS} heartbeat intervals, {GRACE_PERIOD_BEATS * DEFAULT_HEARTBEAT_INTERVAL})",
    )
    group.add_argument(
        "--max-retry",
        type=_non_negative_int,
        default=DEFAULT_MAX_RETRY,
        metavar="N",
        help=f"how many times a dead worker's trial is queued again (default: {DEFAULT_MAX_RETRY})",
    )
    return parser


def split_tuning_args(args: Sequence[str], prog: str = "sb3-npg train") -> tuple[TuningOptions, list[str]]:
    """
    Take this package's tuning flags out of the arguments of ``train``.

    :param args: the arguments of ``train``
    :param prog: the program name shown in messages
    :return: the tuning options and the remaining arguments, for the zoo
    """
    parser = tuning_parser(prog)
    known, rest = parser.parse_known_args(list(args))
    try:
        heartbeat = HeartbeatOptions(known.heartbeat_interval, known.grace_period, known.max_retry)
    except ValueError as error:
        parser.error(str(error))
    return TuningOptions(heartbeat, known.search_space), rest


def is_journal(storage: str) -> bool:
    """
    Whether ``--storage`` names an Optuna journal file rather than a database URL (the zoo's rule).

    :param storage: the ``--storage`` argument
    :return: ``True`` for a path ending in ``.log``
    """
    return storage.endswith(".log")


def describe(storage: str) -> str:
    """
    A storage as it may be shown to the user: the password of a URL is hidden.

    :param storage: a database URL or a journal file path
    :return: the URL without its password, or the path
    """
    if is_journal(storage):
        return storage
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except ArgumentError:
        return storage


def _missing_module(error: BaseException) -> str | None:
    """The name of the module whose absence caused ``error`` (following ``__cause__``), if any."""
    while error is not None:
        if isinstance(error, ModuleNotFoundError) and error.name:
            return error.name.split(".")[0]
        error = error.__cause__  # type: ignore[assignment]
    return None


def _connection_hint(reason: str) -> str:
    if "password authentication failed" in reason or "Access denied" in reason:
        return "check the user name and password in the URL"
    if "does not exist" in reason or "Unknown database" in reason:
        return "create the database first (e.g. createdb), or fix its name in the URL"
    if "unable to open database file" in reason:
        return "check that the folder of the SQLite file exists and is writable"
    if "lock timeout" in reason:
        return (
            f"another worker has been creating Optuna's tables for over {SCHEMA_LOCK_TIMEOUT} s: check that worker, "
            "then start this one again"
        )
    return "check the host and port in the URL, and that the server is running and reachable from this machine"


def open_rdb_storage(url: str, heartbeat: HeartbeatOptions | None = None) -> "optuna.storages.RDBStorage":
    """
    Open a relational Optuna storage, with a heartbeat and retries of dead workers' trials.

    :param url: an SQLAlchemy URL (``postgresql://...``, ``mysql+pymysql://...``, ``sqlite:///...``)
    :param heartbeat: heartbeat and retry settings (``None``: no heartbeat, to read a study)
    :return: the storage
    :raises TuningError: when the URL cannot be read, its driver is missing or the database cannot be reached
    """
    import optuna
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    shown = describe(url)
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as error:
        raise TuningError(f"--storage {url!r} is neither a database URL nor a .log file: use {STORAGE_FORMS}") from error
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() != "sqlite":
        # Trials last hours: test pooled connections before use (a firewall may have closed them)
        engine_kwargs["pool_pre_ping"] = True
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    kwargs: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if heartbeat is not None and heartbeat.enabled:
                kwargs.update(heartbeat_interval=heartbeat.interval, grace_period=heartbeat.grace)
                if heartbeat.max_retry > 0:
                    kwargs.update(_retry_callback_kwargs(heartbeat.max_retry))
            return _create_rdb_storage(url, engine_kwargs, kwargs)
    except sqlalchemy.exc.NoSuchModuleError as error:
        raise TuningError(f"--storage {shown}: unknown database type {parsed.drivername!r}; use {STORAGE_FORMS}") from error
    except ImportError as error:
        module = _missing_module(error) or parsed.drivername
        package = DRIVER_PACKAGES.get(module, module)
        raise TuningError(
            f"--storage {shown} needs the Python module {module!r}, which is not installed: pip install {package}"
            + (" (or write postgresql:// to use psycopg 3)" if module == "psycopg2" else "")
        ) from error
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as error:
        reason = " ".join(str(getattr(error, "orig", error)).split())
        raise TuningError(f"cannot open --storage {shown}: {reason}; {_connection_hint(reason)}") from error


def _lost_schema_race(error: BaseException) -> bool:
    """Whether a database error is a collision with another process creating Optuna's tables."""
    import sqlalchemy.exc

    collisions = (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError)
    if not isinstance(error, collisions):
        return False
    reason = str(getattr(error, "orig", error)).lower()
    return any(text in reason for text in SCHEMA_RACE_REASONS)


@contextlib.contextmanager
def _schema_lock(url: str, connect_args: dict[str, Any]) -> Iterator[None]:
    """
    Hold PostgreSQL's advisory lock :data:`SCHEMA_LOCK_KEY` on a connection of its own (other databases: no lock).

    The lock is released when its connection is closed, a worker that dies holding it included.

    :param url: the storage's SQLAlchemy URL
    :param connect_args: the driver's connection arguments (the connection timeout)
    """
    import sqlalchemy
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() != "postgresql":
        yield
        return
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(sqlalchemy.text(f"SET lock_timeout = '{SCHEMA_LOCK_TIMEOUT}s'"))
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            yield
    finally:
        engine.dispose()


def _create_rdb_storage(url: str, engine_kwargs: dict[str, Any], kwargs: dict[str, Any]) -> "optuna.storages.RDBStorage":
    """
    ``RDBStorage(url, ...)``, which creates Optuna's tables where they are missing, safe against other workers
    doing the same at the same time (see :data:`SCHEMA_LOCK_KEY`).

    :raises TuningError: when the creation of the tables still collides after :data:`SCHEMA_TRIES` tries
    """
    import optuna

    # The waits must differ between workers: the zoo seeds ``random`` with --seed, the same on every machine
    waits = random.SystemRandom()
    tries = 0
    while True:
        tries += 1
        try:
            with _schema_lock(url, engine_kwargs.get("connect_args", {})):
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        except Exception as error:
            if not _lost_schema_race(error):
                raise
            if tries == SCHEMA_TRIES:
                reason = " ".join(str(getattr(error, "orig", error)).split())
                raise TuningError(
                    f"cannot create Optuna's tables in --storage {describe(url)}: other processes creating them at the "
                    f"same time collided with this worker {SCHEMA_TRIES} times ({reason}); start this worker again"
                ) from error
            time.sleep(waits.uniform(0.0, SCHEMA_RETRY_WAIT * tries))


def _retry_callback_kwargs(max_retry: int) -> dict[str, Any]:
    """``RDBStorage``'s keyword argument for Optuna's retry callback, under its current or former name."""
    import optuna

    retry_class = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if retry_class is not None:
        return {"heartbeat_stale_trial_callback": retry_class(max_retry=max_retry)}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=max_retry)}


def open_storage(storage: str, heartbeat: HeartbeatOptions | None = None) -> "optuna.storages.BaseStorage":
    """
    The Optuna storage named by ``--storage``: a journal file for a path ending in ``.log``, else a database.

    :param storage: the ``--storage`` argument
    :param heartbeat: heartbeat and retry settings of a database (journal files have no heartbeat)
    :return: the storage
    :raises TuningError: when the storage cannot be opened
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if not is_journal(storage):
        return open_rdb_storage(storage, heartbeat)
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(storage))


def check_study(
    study: "optuna.Study",
    algo: str,
    env_id: str,
    storage: str,
    writing: bool = True,
    search_space: str = DEFAULT_SEARCH_SPACE,
) -> None:
    """
    Refuse a study that was created for another algorithm or environment, or, to write to it, one that
    minimizes or searches another space; before writing, record the algorithm, environment and search space
    (user attributes ``algo``, ``env`` and ``search_space``) in a study that has none. A study with trials
    but no ``search_space`` predates the flag: its trials searched the full space.

    :param study: the study
    :param algo: the zoo name of the algorithm being tuned
    :param env_id: the environment id
    :param storage: the ``--storage`` argument, for messages
    :param writing: whether trials will be added (``-optimize``), rather than one re-trained (``--trial-id``)
    :param search_space: the ``--search-space`` of the trials to add (unused when not writing: a trial of
        either space re-trains)
    :raises TuningError: when the study cannot be used
    """
    import optuna

    where = f"study {study.study_name!r} in {describe(storage)}"
    if writing and study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
        directions = ", ".join(direction.name.lower() for direction in study.directions)
        raise TuningError(
            f"{where} has direction {directions}, but tuning maximizes the mean reward: use another --study-name, "
            f"or delete that study (optuna delete-study --storage URL --study-name {study.study_name})"
        )
    attrs = study.user_attrs
    if writing and ("algo" not in attrs or "env" not in attrs):
        study.set_user_attr("algo", attrs.get("algo", algo))
        study.set_user_attr("env", attrs.get("env", env_id))
        attrs = study.user_attrs  # re-read: a worker started at the same moment may have written first
    if (attrs.get("algo", algo), attrs.get("env", env_id)) != (algo, env_id):
        raise TuningError(
            f"{where} was created for --algo {attrs.get('algo')} --env {attrs.get('env')}, not --algo {algo} --env {env_id}: "
            "use another --study-name for this algorithm and environment"
        )
    if writing:
        if "search_space" not in attrs:
            study.set_user_attr("search_space", DEFAULT_SEARCH_SPACE if study.trials else search_space)
            attrs = study.user_attrs
        if attrs["search_space"] != search_space:
            raise TuningError(
                f"{where} searches --search-space {attrs['search_space']}, not {search_space}: use another --study-name "
                "for this search space"
            )


def fail_stale_trials(study: "optuna.Study") -> None:
    """
    Fail the running trials of dead workers (no heartbeat within the grace period) and queue their retries.

    Optuna does this only before a worker starts a trial; doing it before counting trials keeps a dead
    worker's trial from counting towards ``--max-total-trials``. Storages without a heartbeat are left alone.

    :param study: the study
    """
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def journal_note(heartbeat: HeartbeatOptions) -> None:
    """
    Tell the user, on stderr, that a journal file storage has no heartbeat.

    :param heartbeat: the heartbeat settings given (they apply to database storages only)
    """
    print(
        "Note: a journal file storage has no heartbeat: the trial of a worker that is killed stays RUNNING and is "
        "not retried"
        + (" (--heartbeat-interval, --grace-period and --max-retry apply to database storages)" if heartbeat.enabled else ""),
        file=sys.stderr,
    )
