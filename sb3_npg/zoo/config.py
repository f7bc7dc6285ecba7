"""
Read the shipped zoo-format hyperparameter files and build models from them, without needing rl-zoo3.

The algorithms, their classes and their files are the rows of :data:`sb3_npg.zoo.algos.ALGOS`.
"""

import contextlib
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack, VecNormalize

from sb3_npg.common.vec_env import InfoCopyDummyVecEnv
from sb3_npg.zoo.algos import ALGOS, algo_spec
from sb3_npg.zoo.algos import HYPERPARAMS_DIR as HYPERPARAMS_DIR  # the folder of the shipped files, as before

# Keys of a zoo entry that describe the experiment rather than the algorithm's constructor
EXPERIMENT_KEYS = (
    "n_envs",
    "n_timesteps",
    "policy",
    "normalize",
    "env_wrapper",
    "frame_stack",
    "callback",
    "vec_env_wrapper",
    "env_kwargs",
    "monitor_kwargs",
)
# Key of the entry the zoo uses for every Atari game
ATARI_KEY = "atari"
# Zoo names of the algorithms with recurrent (LSTM) policies (as the zoo's ``ppo_lstm``), from the table
RECURRENT_ALGOS = tuple(name for name, spec in ALGOS.items() if spec.recurrent)


def hyperparams_path(algo: str) -> Path:
    """
    Path of the shipped hyperparameter file of an algorithm.

    :param algo: a zoo name of :data:`sb3_npg.zoo.algos.ALGOS` (``"npg"``, ``"klppo"``, ``"npg_lstm"``, ...)
    :return: the path of ``<algo>.yml``
    """
    return algo_spec(algo).hyperparams_file


def load_all_hyperparams(algo: str) -> dict[str, dict[str, Any]]:
    """
    Every entry of the shipped file of ``algo``, by environment id (and ``"atari"``).

    :param algo: a zoo name of :data:`sb3_npg.zoo.algos.ALGOS`
    :return: the entries, as the YAML file writes them (merge keys resolved)
    """
    with open(hyperparams_path(algo)) as file:
        entries = yaml.safe_load(file)
    return dict(entries or {})


def _ensure_registered(env_id: str) -> None:
    """
    Register the environments ``env_id`` may need when it is unknown: the Atari games (when ale-py is
    installed) and rl-zoo3's velocity-masked ``<Env>NoVel-v<k>`` (when rl-zoo3 is installed).
    """
    if env_id in gym.registry:
        return
    if "NoVel-v" in env_id:
        with contextlib.suppress(ImportError):
            importlib.import_module("rl_zoo3.import_envs")
        return
    try:
        ale_py = importlib.import_module("ale_py")
    except ImportError:
        return
    gym.register_envs(ale_py)


def is_atari(env_id: str) -> bool:
    """
    Whether ``env_id`` is an Arcade Learning Environment game (the zoo's test, on the entry point).

    :param env_id: a Gymnasium environment id
    :return: ``True`` for Atari games, ``False`` otherwise (unknown ids included)
    """
    _ensure_registered(env_id)
    spec = gym.registry.get(env_id)
    return spec is not None and "AtariEnv" in str(spec.entry_point)


def load_hyperparams(algo: str, env_id: str) -> dict[str, Any]:
    """
    The raw zoo entry for ``env_id`` in the shipped file of ``algo``.

    As in the zoo, an Atari game without an entry of its own gets the ``atari`` entry.

    :param algo: a zoo name of :data:`sb3_npg.zoo.algos.ALGOS`
    :param env_id: a Gymnasium environment id (or ``"atari"``)
    :return: the entry, as the YAML file writes it
    """
    entries = load_all_hyperparams(algo)
    if env_id not in entries and ATARI_KEY in entries and is_atari(env_id):
        env_id = ATARI_KEY
    if env_id not in entries:
        raise ValueError(f"no {algo} hyperparameters for {env_id!r}; available: {sorted(entries)}")
    return dict(entries[env_id])


def linear_schedule(initial_value: float) -> LinearSchedule:
    """
    A schedule decreasing linearly from ``initial_value`` (at progress 1) to 0 (zoo's ``lin_<value>``).

    SB3's ``LinearSchedule`` rather than a closure, so that a model saved with it loads anywhere.

    :param initial_value: the value at the start of training
    :return: the schedule
    """
    return LinearSchedule(start=initial_value, end=0.0, end_fraction=1.0)


def _evaluate(key: str, text: str) -> Any:
    """Evaluate a Python expression of a zoo entry (``policy_kwargs``, ``normalize``, ...) as the zoo does."""
    try:
        return eval(text, {"nn": th.nn, "th": th, "dict": dict})  # zoo convention
    except Exception as error:
        raise ValueError(f"{key} must be a Python expression such as 'dict(...)', got {text!r}: {error}") from error


def constructor_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    """
    The algorithm's keyword arguments from a zoo entry: ``lin_<x>`` strings become linear schedules and
    a ``policy_kwargs`` string is evaluated the way the zoo does.

    :param entry: a zoo entry (see :func:`load_hyperparams`)
    :return: keyword arguments for the algorithm's constructor
    """
    kwargs = {key: value for key, value in entry.items() if key not in EXPERIMENT_KEYS}
    for key, value in kwargs.items():
        if isinstance(value, str) and value.startswith("lin_"):
            try:
                kwargs[key] = linear_schedule(float(value[len("lin_") :]))
            except ValueError as error:
                raise ValueError(f"{key} must be a number or 'lin_<number>', got {value!r}") from error
    if isinstance(kwargs.get("policy_kwargs"), str):
        kwargs["policy_kwargs"] = _evaluate("policy_kwargs", kwargs["policy_kwargs"])
    return kwargs


def _import_object(path: str, key: str) -> Any:
    module_name, _, name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{key} must name an importable class such as 'package.module.Class', got {path!r}")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{key}: cannot import {path!r}: {error}") from error


def wrapper_from_hyperparams(entry: dict[str, Any], key: str = "env_wrapper") -> Callable[[Any], Any] | None:
    """
    The wrapper an entry asks for, in the zoo's notation: a class path, a ``{class path: kwargs}``
    mapping, or a list of those (applied in order).

    :param entry: a zoo entry
    :param key: ``"env_wrapper"`` (Gymnasium wrappers) or ``"vec_env_wrapper"`` (``VecEnv`` wrappers)
    :return: a function wrapping an environment, or ``None`` when the entry has no such key
    """
    spec = entry.get(key)
    if spec is None:
        return None
    items = spec if isinstance(spec, list) else [spec]
    wrappers: list[tuple[Any, dict[str, Any]]] = []
    for item in items:
        if isinstance(item, str):
            wrappers.append((_import_object(item, key), {}))
        elif isinstance(item, dict) and len(item) == 1:
            ((path, kwargs),) = item.items()
            wrappers.append((_import_object(path, key), dict(kwargs or {})))
        else:
            raise ValueError(f"{key} must be a class path, a {{class path: kwargs}} mapping or a list of them, got {item!r}")

    def wrap(env: Any) -> Any:
        for wrapper_class, kwargs in wrappers:
            env = wrapper_class(env, **kwargs)
        return env

    return wrap


def _normalize_kwargs(entry: dict[str, Any]) -> dict[str, Any] | None:
    """``VecNormalize``'s keyword arguments for an entry, or ``None`` when it does not normalize."""
    normalize = entry.get("normalize", False)
    if isinstance(normalize, str):
        normalize = _evaluate("normalize", normalize)
    if isinstance(normalize, dict):
        kwargs = dict(normalize)
    elif isinstance(normalize, bool):
        if not normalize:
            return None
        kwargs = {}
    else:
        raise ValueError(f"normalize must be a bool, a dict or a 'dict(...)' string, got {normalize!r}")
    if "gamma" in entry:
        kwargs["gamma"] = entry["gamma"]  # as the zoo does: the return is discounted like the algorithm's
    return kwargs


def make_env_from_hyperparams(
    entry: dict[str, Any],
    env_id: str,
    seed: int | None = None,
    n_envs: int | None = None,
    vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] = InfoCopyDummyVecEnv,
) -> VecEnv:
    """
    A vectorized environment as ``sb3-npg train`` would build it for training: ``env_wrapper``, ``env_kwargs``,
    ``vec_env_wrapper``, ``normalize`` (``VecNormalize``) and ``frame_stack`` (``VecFrameStack``), in that order,
    around copies in an :class:`~sb3_npg.common.vec_env.InfoCopyDummyVecEnv` (the zoo's ``DummyVecEnv``, with a
    cheaper copy of the infos).

    :param entry: a zoo entry
    :param env_id: the environment id
    :param seed: seed of the environments
    :param n_envs: number of copies (default: the entry's ``n_envs``)
    :param vec_env_cls: the class that holds the copies (SB3's ``DummyVecEnv``: the stack as rl-zoo3 builds it)
    :return: the environment
    """
    _ensure_registered(env_id)
    env_kwargs = entry.get("env_kwargs") or {}
    if isinstance(env_kwargs, str):
        env_kwargs = _evaluate("env_kwargs", env_kwargs)
    env = make_vec_env(
        env_id,
        n_envs=n_envs or entry.get("n_envs", 1),
        seed=seed,
        env_kwargs=env_kwargs,
        wrapper_class=wrapper_from_hyperparams(entry, "env_wrapper"),
        vec_env_cls=vec_env_cls,
    )
    vec_env_wrapper = wrapper_from_hyperparams(entry, "vec_env_wrapper")
    if vec_env_wrapper is not None:
        env = vec_env_wrapper(env)
    normalize_kwargs = _normalize_kwargs(entry)
    if normalize_kwargs is not None:
        env = VecNormalize(env, **normalize_kwargs)
    frame_stack = entry.get("frame_stack")
    if frame_stack:
        env = VecFrameStack(env, n_stack=int(frame_stack))
    return env


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """
    The class of one of this package's algorithms, by its zoo name.

    The recurrent classes need sb3-contrib, imported only when one of them is asked for.

    :param algo: a zoo name of :data:`sb3_npg.zoo.algos.ALGOS`
    :return: the algorithm's class
    """
    return algo_spec(algo).load()


def build_model(algo: str, env_id: str, seed: int | None = None, **overrides: Any) -> tuple[BaseAlgorithm, int]:
    """
    Build a model from the shipped hyperparameters of ``algo`` for ``env_id``.

    :param algo: a zoo name of :data:`sb3_npg.zoo.algos.ALGOS`
    :param env_id: the environment id
    :param seed: the seed of the model and the environments
    :param overrides: constructor arguments that replace the file's (``verbose``, ``device``, ...)
    :return: the model and the number of timesteps the entry trains for
    """
    algo_class = algorithm_class(algo)
    entry = load_hyperparams(algo, env_id)
    env = make_env_from_hyperparams(entry, env_id, seed=seed)
    kwargs = {**constructor_kwargs(entry), **overrides}
    model = algo_class(entry.get("policy", "MlpPolicy"), env, seed=seed, **kwargs)
    return model, int(float(entry["n_timesteps"]))
