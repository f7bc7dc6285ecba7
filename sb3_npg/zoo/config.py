"""Read the shipped zoo-format hyperparameter files and build models from them, without needing rl-zoo3."""

from pathlib import Path
from typing import Any

import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

HYPERPARAMS_DIR = Path(__file__).parent / "hyperparams"

# Keys of a zoo entry that describe the experiment rather than the algorithm's constructor
EXPERIMENT_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "env_wrapper", "frame_stack", "callback", "vec_env_wrapper")


def hyperparams_path(algo: str) -> Path:
    """
    Path of the shipped hyperparameter file of an algorithm.

    :param algo: ``"npg"`` or ``"klppo"``
    :return: the path of ``<algo>.yml``
    """
    path = HYPERPARAMS_DIR / f"{algo}.yml"
    if not path.is_file():
        raise ValueError(f"algo must be one of {sorted(p.stem for p in HYPERPARAMS_DIR.glob('*.yml'))}, got {algo!r}")
    return path


def load_hyperparams(algo: str, env_id: str) -> dict[str, Any]:
    """
    The raw zoo entry for ``env_id`` in the shipped file of ``algo``.

    :param algo: ``"npg"`` or ``"klppo"``
    :param env_id: a Gymnasium environment id (or ``"atari"``)
    :return: the entry, as the YAML file writes it
    """
    with open(hyperparams_path(algo)) as file:
        entries = yaml.safe_load(file)
    if env_id not in entries:
        raise ValueError(f"no {algo} hyperparameters for {env_id!r}; available: {sorted(entries)}")
    return dict(entries[env_id])


def linear_schedule(initial_value: float) -> Any:
    """
    A schedule decreasing linearly from ``initial_value`` (at progress 1) to 0 (zoo's ``lin_<value>``).

    :param initial_value: the value at the start of training
    :return: the schedule
    """

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial_value

    return schedule


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
            kwargs[key] = linear_schedule(float(value[len("lin_") :]))
    if isinstance(kwargs.get("policy_kwargs"), str):
        kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"], {"nn": th.nn, "dict": dict})  # zoo convention
    return kwargs


def make_env_from_hyperparams(entry: dict[str, Any], env_id: str, seed: int | None = None, n_envs: int | None = None) -> VecEnv:
    """
    A vectorized environment as the zoo would build it for training (VecNormalize included).

    :param entry: a zoo entry
    :param env_id: the environment id
    :param seed: seed of the environments
    :param n_envs: number of copies (default: the entry's ``n_envs``)
    :return: the environment
    """
    env = make_vec_env(env_id, n_envs=n_envs or entry.get("n_envs", 1), seed=seed)
    normalize = entry.get("normalize", False)
    if normalize:
        normalize_kwargs = eval(normalize, {"dict": dict}) if isinstance(normalize, str) else {}
        env = VecNormalize(env, **normalize_kwargs)
    return env


def build_model(algo: str, env_id: str, seed: int | None = None, **overrides: Any) -> tuple[BaseAlgorithm, int]:
    """
    Build a model from the shipped hyperparameters of ``algo`` for ``env_id``.

    :param algo: ``"npg"`` or ``"klppo"``
    :param env_id: the environment id
    :param seed: the seed of the model and the environments
    :param overrides: constructor arguments that replace the file's (``verbose``, ``device``, ...)
    :return: the model and the number of timesteps the entry trains for
    """
    from sb3_npg import KLPPO, NPG

    algo_class = {"npg": NPG, "klppo": KLPPO}[algo]
    entry = load_hyperparams(algo, env_id)
    env = make_env_from_hyperparams(entry, env_id, seed=seed)
    kwargs = {**constructor_kwargs(entry), **overrides}
    model = algo_class(entry.get("policy", "MlpPolicy"), env, seed=seed, **kwargs)
    return model, int(float(entry["n_timesteps"]))
