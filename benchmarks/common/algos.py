"""
The algorithms and the suites of the benchmarks.

- ours: :data:`OUR_ALGOS`, the rows of this package's table :data:`sb3_npg.zoo.algos.ALGOS` (nothing here lists them);
- the peers: :data:`PEERS`, the Stable-Baselines3 and sb3-contrib algorithms they are benchmarked against, which take
  the installed rl-zoo3's hyperparameters (the ``peer`` of each of ours is one of them; ``a2c`` is an extra one);
- :data:`SUITES`: ``learning.py``'s ``--suite NAME``, its default environments and algorithms (ours with MLP or with LSTM
  policies, then their peers);
- :data:`ALGO_ORDER`: the order of the tables and legends; :func:`algorithm_class`, :func:`vec_env_class`,
  :func:`base_algo`, :func:`is_ours`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_npg.common.vec_env import InfoCopyDummyVecEnv
from sb3_npg.zoo.algos import ALGOS


@dataclass(frozen=True)
class Peer:
    """
    An algorithm of Stable-Baselines3 or sb3-contrib that ours are compared with, run with the zoo's hyperparameters.

    :param name: its rl-zoo3 name, also the stem of the zoo's hyperparameter file
    :param class_path: where the class lives, ``"<module>:<class name>"``
    :param recurrent: whether its policies are recurrent (LSTM)
    """

    name: str
    class_path: str
    recurrent: bool = False

    def load(self) -> type[BaseAlgorithm]:
        """
        Import the class.

        :return: the algorithm's class
        """
        module_name, class_name = self.class_path.split(":")
        return getattr(importlib.import_module(module_name), class_name)


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer("trpo", "sb3_contrib:TRPO"),
        Peer("ppo", "stable_baselines3:PPO"),
        Peer("a2c", "stable_baselines3:A2C"),
        Peer("ppo_lstm", "sb3_contrib:RecurrentPPO", recurrent=True),
    )
}
"""The peers, by zoo name."""

OUR_ALGOS = tuple(ALGOS)
PEER_ALGOS = tuple(PEERS)


def _suite_algos(recurrent: bool) -> tuple[str, ...]:
    """Ours with (or without) recurrent policies, in the table's order, then their peers."""
    ours = [name for name, spec in ALGOS.items() if spec.recurrent == recurrent]
    return (*ours, *dict.fromkeys(ALGOS[name].peer for name in ours))


# The default --algos of each suite: npg klppo trpo ppo, and npg_lstm klppo_lstm ppo_lstm
DEFAULT_ALGOS = _suite_algos(recurrent=False)
RECURRENT_ALGOS = _suite_algos(recurrent=True)
SUITE = (
    "CartPole-v1",
    "Acrobot-v1",
    "Pendulum-v1",
    "MountainCarContinuous-v0",
    "LunarLanderContinuous-v3",
    "HalfCheetah-v5",
    "Hopper-v5",
)
# Partially observed tasks (rl-zoo3 masks the velocities), for the recurrent (LSTM) algorithms
RECURRENT_SUITE = (
    "CartPoleNoVel-v1",
    "PendulumNoVel-v1",
    "MountainCarContinuousNoVel-v0",
    "LunarLanderNoVel-v3",
)
# --suite NAME -> the default environments and algorithms
SUITES = {"standard": (SUITE, DEFAULT_ALGOS), "recurrent": (RECURRENT_SUITE, RECURRENT_ALGOS)}
# Tables and legends: ours with MLP policies, the peers with MLP policies, then the same with LSTM policies
_RECURRENT = {**{name: spec.recurrent for name, spec in ALGOS.items()}, **{name: p.recurrent for name, p in PEERS.items()}}
ALGO_ORDER = tuple(
    name for recurrent in (False, True) for name, is_recurrent in _RECURRENT.items() if is_recurrent is recurrent
)


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """
    The class of an algorithm, by its zoo name.

    :param algo: a name of :data:`OUR_ALGOS` or :data:`PEER_ALGOS`
    :return: the class
    """
    if algo in ALGOS:
        return ALGOS[algo].load()
    if algo in PEERS:
        return PEERS[algo].load()
    raise ValueError(f"unknown algo {algo!r}: choose from {sorted((*OUR_ALGOS, *PEER_ALGOS))}")


def vec_env_class(algo: str) -> type[DummyVecEnv]:
    """
    The class that holds an algorithm's copies, as its own command line builds it: SB3's ``DummyVecEnv`` for a peer
    (``rl_zoo3 train``), :class:`~sb3_npg.common.vec_env.InfoCopyDummyVecEnv` for ours (``sb3-npg train``).

    :param algo: a name of :data:`OUR_ALGOS` or :data:`PEER_ALGOS`
    :return: the class
    """
    return DummyVecEnv if algo in PEERS else InfoCopyDummyVecEnv


def base_algo(label: str) -> str:
    """
    The algorithm of a result's label.

    :param label: ``<algo>``, or ``<algo>:<variant>`` for a ``--variant`` run
    :return: ``<algo>``
    """
    return label.partition(":")[0]


def is_ours(label: str) -> bool:
    """
    Whether a result's algorithm is one of this package's.

    :param label: ``<algo>`` or ``<algo>:<variant>``
    :return: whether ``<algo>`` is in :data:`OUR_ALGOS`
    """
    return base_algo(label) in OUR_ALGOS
