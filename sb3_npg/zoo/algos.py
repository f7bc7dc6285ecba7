"""
The one table of this package's algorithms: zoo name, class, hyperparameter file, search space, recurrent or not.

The command line, the zoo registration, the tuning code, the configuration helpers and the benchmarks all read
:data:`ALGOS`; nothing else lists the algorithms. A new algorithm is a row here, a ``<name>.yml`` beside this
module and, when its search space is new, a sampler family in :mod:`sb3_npg.zoo.hyperparams_opt`.

The classes are imported on first use (:meth:`AlgoSpec.load`): the recurrent ones need sb3-contrib.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm

HYPERPARAMS_DIR = Path(__file__).parent / "hyperparams"


@dataclass(frozen=True)
class AlgoSpec:
    """
    One of this package's algorithms, as the zoo and the benchmarks see it.

    :param name: the zoo's name of the algorithm (``-a/--algo``), also the stem of its hyperparameter file
    :param class_path: where the class lives, ``"<module>:<class name>"``
    :param search_space: the sampler family of :mod:`sb3_npg.zoo.hyperparams_opt` that tunes it (``"npg"`` or
        ``"klppo"``; the recurrent algorithms search their feed-forward counterpart's space)
    :param recurrent: whether its policies are recurrent (LSTM), as the zoo's ``ppo_lstm``
    :param peer: the zoo algorithm it is benchmarked against
    """

    name: str
    class_path: str
    search_space: str
    recurrent: bool
    peer: str

    @property
    def hyperparams_file(self) -> Path:
        """The shipped zoo-format hyperparameter file, ``<name>.yml``."""
        return HYPERPARAMS_DIR / f"{self.name}.yml"

    def load(self) -> type[BaseAlgorithm]:
        """
        Import the class.

        :return: the algorithm's class
        """
        module_name, class_name = self.class_path.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            if self.recurrent:
                raise ImportError(f'{self.name} needs sb3-contrib: pip install "sb3-npg[recurrent]"') from error
            raise
        return getattr(module, class_name)


ALGOS: dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec("npg", "sb3_npg.npg:NPG", search_space="npg", recurrent=False, peer="trpo"),
        AlgoSpec("klppo", "sb3_npg.klppo:KLPPO", search_space="klppo", recurrent=False, peer="ppo"),
        AlgoSpec("npg_lstm", "sb3_npg.npg_recurrent:RecurrentNPG", search_space="npg", recurrent=True, peer="ppo_lstm"),
        AlgoSpec(
            "klppo_lstm", "sb3_npg.klppo_recurrent:RecurrentKLPPO", search_space="klppo", recurrent=True, peer="ppo_lstm"
        ),
    )
}
"""Every algorithm of this package, by zoo name, in the order the command line and the documentation list them."""


def algo_spec(name: str) -> AlgoSpec:
    """
    The table's row of an algorithm.

    :param name: a zoo name of :data:`ALGOS`
    :return: its row
    """
    if name not in ALGOS:
        raise ValueError(f"algo must be one of {list(ALGOS)}, got {name!r}")
    return ALGOS[name]
