"""
Make this package's algorithms known to rl-baselines3-zoo's own registries, without forking it.

The zoo looks algorithms up in module-level dictionaries: ``rl_zoo3.utils.ALGOS`` (name -> class: the
``--algo`` choices of ``train``, ``enjoy`` and ``record_video``, and the class they build or load) and
``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` (Optuna search spaces, for the
zoo's own ``ExperimentManager``). Those dictionaries are the zoo's only way in for a new algorithm:
:func:`register` adds our rows of :data:`sb3_npg.zoo.algos.ALGOS` to their contents (it replaces no object of
the zoo), so every part of the zoo that imported them sees the new algorithms.

Everything else (the ``lin_<x>`` schedules of ``target_kl``, the ``update`` search space, fault-tolerant
tuning, re-training trial 0) is :class:`sb3_npg.zoo.exp_manager.NPGExperimentManager`'s, which ``sb3-npg train``
uses. Importing this module does not import rl-zoo3; :func:`register` does.

.. code-block:: python

    from sb3_npg.zoo.registry import register

    register()  # now rl_zoo3.utils.ALGOS["npg"] is sb3_npg.NPG
"""

import importlib.util
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_npg.zoo.algos import ALGOS, algo_spec


def algorithms() -> dict[str, type[BaseAlgorithm]]:
    """
    The zoo names of this package's algorithms and their classes, from :data:`sb3_npg.zoo.algos.ALGOS`.

    The recurrent ones (``npg_lstm``, ``klppo_lstm``, as the zoo's ``ppo_lstm``) are included when
    sb3-contrib is installed.

    :return: ``{"npg": NPG, "klppo": KLPPO, "npg_lstm": RecurrentNPG, "klppo_lstm": RecurrentKLPPO}``
    """
    recurrent = importlib.util.find_spec("sb3_contrib") is not None
    return {name: spec.load() for name, spec in ALGOS.items() if recurrent or not spec.recurrent}


def default_conf_file(algo: str) -> str:
    """
    The shipped hyperparameter file of one of our algorithms, as the zoo's ``--conf-file`` expects it.

    :param algo: a zoo name of :data:`sb3_npg.zoo.algos.ALGOS`
    :return: the path of ``sb3_npg/zoo/hyperparams/<algo>.yml``
    """
    return str(algo_spec(algo).hyperparams_file)


def register() -> dict[str, type[BaseAlgorithm]]:
    """
    Add this package's algorithms to rl-baselines3-zoo's algorithm registry and Optuna samplers/converters.

    Calling it again is harmless. It needs rl-zoo3 (``pip install "sb3-npg[zoo]"``).

    :return: the algorithms registered, by zoo name
    """
    try:
        from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER as ZOO_CONVERTERS
        from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER as ZOO_SAMPLERS
        from rl_zoo3.utils import ALGOS as ZOO_ALGOS

        from sb3_npg.zoo.hyperparams_opt import family
    except ImportError as error:
        raise ImportError(
            'The rl-baselines3-zoo integration needs rl_zoo3 and its dependencies: pip install "sb3-npg[zoo]"'
        ) from error

    registered = algorithms()
    # The zoo calls samplers and converters positionally: its annotations name their parameters otherwise
    samplers: dict[str, Any] = {name: family(name).full for name in registered}
    converters: dict[str, Any] = {name: family(name).convert for name in registered}
    ZOO_ALGOS.update(registered)
    ZOO_SAMPLERS.update(samplers)
    ZOO_CONVERTERS.update(converters)
    return registered
