"""
The entry point of ``sb3-npg train``: rl-baselines3-zoo's ``train``, building an
:class:`sb3_npg.zoo.exp_manager.NPGExperimentManager`.

The zoo's ``rl_zoo3.train.train()`` declares its flags, parses ``sys.argv``, seeds, sets torch's threads, starts
Weights & Biases when asked, builds an ``ExperimentManager`` and trains or tunes with it, all in one function:
its parser is built inside it, and the class is the ``ExperimentManager`` of its module, with no parameter to
give another. :func:`zoo_train` makes a function of that same code whose name ``ExperimentManager`` stands for
a class of our choice, in a namespace of its own: the zoo's module, its ``train()`` and its flags are left as
they are, and every flag of the installed zoo keeps its meaning.
"""

import functools
import types
from collections.abc import Callable

import rl_zoo3.train
from rl_zoo3.exp_manager import ExperimentManager

from sb3_npg.zoo.exp_manager import NPGExperimentManager
from sb3_npg.zoo.tuning import TuningOptions

#: The name under which the zoo's ``train()`` finds its experiment manager
MANAGER_NAME = "ExperimentManager"


def zoo_train(manager_class: Callable[..., ExperimentManager]) -> Callable[[], None]:
    """
    The zoo's ``train()``, with ``manager_class`` where it builds its ``ExperimentManager``.

    :param manager_class: what to call with the zoo's ``ExperimentManager`` arguments (a subclass, or a
        ``functools.partial`` of one with more arguments)
    :return: a function that parses ``sys.argv`` with the zoo's flags and trains or tunes, as the zoo's ``train()``
    :raises RuntimeError: when the installed zoo's ``train()`` builds no ``ExperimentManager`` by that name
    """
    train = rl_zoo3.train.train
    if MANAGER_NAME not in train.__code__.co_names or train.__globals__.get(MANAGER_NAME) is not ExperimentManager:
        raise RuntimeError(
            f"rl_zoo3 {getattr(rl_zoo3, '__version__', '?')}: rl_zoo3.train.train() no longer builds an "
            f"{MANAGER_NAME}; this sb3-npg supports the rl_zoo3 versions its zoo extra names"
        )
    namespace = {**train.__globals__, MANAGER_NAME: manager_class}
    return types.FunctionType(train.__code__, namespace, train.__name__, train.__defaults__, train.__closure__)


def train(tuning: TuningOptions | None = None) -> None:
    """
    ``sb3-npg train``: parse ``sys.argv`` with the zoo's flags and train, re-train a trial or tune (``-optimize``)
    with an :class:`sb3_npg.zoo.exp_manager.NPGExperimentManager`.

    :param tuning: this package's tuning flags (``--search-space``, ``--heartbeat-interval``, ...), taken out of
        the command line before (:func:`sb3_npg.zoo.tuning.split_tuning_args`); default: their defaults
    """
    zoo_train(functools.partial(NPGExperimentManager, tuning=tuning))()
