"""
The hyperparameters of a benchmark run, in the zoo's format, and the overrides of ``--variant``.

Ours take the files this package ships (``sb3_npg/zoo/hyperparams/<algo>.yml``, read by :mod:`sb3_npg.zoo.config`); the
peers take the installed rl-zoo3's ``hyperparams/<algo>.yml``. The zoo has no ``-v5`` MuJoCo entries: a peer without an
entry for an environment takes the entry of the newest older version of it (``HalfCheetah-v4`` for ``HalfCheetah-v5``).

- :func:`resolve_entry`: the entry of an algorithm for an environment, and where it comes from;
- :func:`all_entries`, :func:`zoo_hyperparams_file`: a whole file;
- :func:`apply_overrides`, :func:`action_dims`: an entry changed by ``--variant``'s ``KEY=VALUE`` overrides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from common.algos import OUR_ALGOS, PEER_ALGOS
from sb3_npg.zoo import config
from sb3_npg.zoo.algos import ALGOS

_VERSION = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")


def zoo_hyperparams_file(algo: str) -> Path:
    """
    The installed rl-baselines3-zoo's hyperparameter file of a peer.

    :param algo: a name of :data:`common.algos.PEER_ALGOS` (``"trpo"``, ``"ppo"``, ``"a2c"``, ``"ppo_lstm"``)
    :return: the path of ``rl_zoo3/hyperparams/<algo>.yml``
    """
    try:
        import rl_zoo3
    except ImportError as error:
        raise ImportError('the peers take the zoo\'s hyperparameters: pip install "sb3-npg[zoo]"') from error
    return Path(rl_zoo3.__file__).resolve().parent / "hyperparams" / f"{algo}.yml"


def all_entries(algo: str) -> tuple[dict[str, Any], str]:
    """
    Every entry of the hyperparameter file of an algorithm.

    :param algo: a name of :data:`common.algos.OUR_ALGOS` or :data:`common.algos.PEER_ALGOS`
    :return: the entries by environment id, and a short name of the file (``"sb3_npg npg.yml"``, ``"rl_zoo3 trpo.yml"``)
    """
    if algo in ALGOS:
        return config.load_all_hyperparams(algo), f"sb3_npg {ALGOS[algo].hyperparams_file.name}"
    if algo in PEER_ALGOS:
        path = zoo_hyperparams_file(algo)
        with open(path) as file:
            return dict(yaml.safe_load(file) or {}), f"rl_zoo3 {path.name}"
    raise ValueError(f"unknown algo {algo!r}: choose from {sorted((*OUR_ALGOS, *PEER_ALGOS))}")


def older_version(env_id: str, keys: Iterable[str]) -> str | None:
    """
    The newest older version of an environment among some entries.

    :param env_id: ``<name>-v<version>``
    :param keys: the entries' environment ids
    :return: the key ``<name>-v<k>`` with the largest ``k`` below ``version``, or ``None``
    """
    match = _VERSION.match(env_id)
    if match is None:
        return None
    name, version = match["name"], int(match["version"])
    candidates = []
    for key in keys:
        other = _VERSION.match(str(key))
        if other is not None and other["name"] == name and int(other["version"]) < version:
            candidates.append((int(other["version"]), str(key)))
    return max(candidates)[1] if candidates else None


def resolve_entry(algo: str, env_id: str, version_fallback: bool = True) -> tuple[dict[str, Any], str] | None:
    """
    The hyperparameters of ``algo`` for ``env_id``: ours from the shipped files, the peers' from the zoo's.

    A peer without an entry for ``env_id`` takes the entry of the newest older version of the same
    environment when ``version_fallback`` is set (the zoo stops at the ``-v4`` MuJoCo environments).
    An Atari game without an entry takes the file's ``atari`` entry, as in the zoo.

    :param algo: a name of :data:`common.algos.OUR_ALGOS` or :data:`common.algos.PEER_ALGOS`
    :param env_id: a Gymnasium environment id
    :param version_fallback: whether a peer may use an older version's entry
    :return: the entry and where it comes from (``"rl_zoo3 trpo.yml[HalfCheetah-v4]"``), or ``None``
    """
    entries, file_name = all_entries(algo)
    key: str | None = env_id
    if env_id not in entries:
        key = None
        if config.ATARI_KEY in entries and config.is_atari(env_id):
            key = config.ATARI_KEY
        elif version_fallback and algo in PEER_ALGOS:
            key = older_version(env_id, entries)
    if key is None:
        return None
    return dict(entries[key]), f"{file_name}[{key}]"


def action_dims(env_id: str) -> int:
    """
    The number of action dimensions that sb3-contrib's TRPO averages its KL over.

    :param env_id: a Gymnasium environment id
    :return: the size of a ``Box`` or ``MultiBinary`` action; 1 for ``Discrete`` and ``MultiDiscrete``,
        whose KL TRPO takes jointly
    """
    env = gym.make(env_id)
    try:
        space = env.action_space
        return int(np.prod(space.shape)) if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)) else 1
    finally:
        env.close()


def apply_overrides(entry: dict[str, Any], overrides: dict[str, str], env_id: str) -> tuple[dict[str, Any], str]:
    """
    An entry with a variant's overrides: each value is read as YAML, except ``<x>*d``, which is ``x`` times the
    environment's action dimensions.

    :param entry: the hyperparameter entry
    :param overrides: ``{key: value}`` as given on the command line
    :param env_id: the environment (for ``*d``)
    :return: the new entry, and the overrides with their values as used (``"cg_damping=0.6 damped_step_size=True"``)
    """
    changed = dict(entry)
    for key, text in overrides.items():
        if text.endswith("*d"):
            try:
                value: Any = round(float(text[:-2]) * action_dims(env_id), 12)
            except ValueError as error:
                raise ValueError(f"override {key}={text}: '<x>*d' needs a number x") from error
        else:
            value = yaml.safe_load(text)
        changed[key] = value
    return changed, " ".join(f"{key}={changed[key]}" for key in overrides)
