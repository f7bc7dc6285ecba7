"""
Make ``npg`` and ``klppo`` first-class algorithms of rl-baselines3-zoo, without forking it.

The zoo looks algorithms up in three module-level dictionaries: ``rl_zoo3.utils.ALGOS`` (name -> class,
used by ``train``, ``enjoy``, ``record_video``, ...) and ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` /
``HYPERPARAMS_CONVERTER`` (Optuna search spaces). :func:`register` adds our entries to those very
objects, so every part of the zoo that imported them sees the new algorithms. It also teaches the zoo's
``ExperimentManager`` the ``lin_<x>`` schedules of ``target_kl`` (the zoo only knows those of
``learning_rate``, ``clip_range``, ``clip_range_vf`` and ``delta_std``), which our files use. Importing this
module does not import rl-zoo3; :func:`register` does.

.. code-block:: python

    from sb3_npg.zoo.registry import register

    register()  # now rl_zoo3.utils.ALGOS["npg"] is sb3_npg.NPG
"""

import importlib.util
from collections.abc import Callable
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_npg.zoo.config import RECURRENT_ALGOS, algorithm_class, constructor_kwargs, hyperparams_path

# Keys our algorithms accept as schedules, beyond those the zoo already turns into schedules
SCHEDULE_KEYS = ("target_kl",)


def algorithms() -> dict[str, type[BaseAlgorithm]]:
    """
    The zoo names of this package's algorithms and their classes.

    The recurrent ones (``npg_lstm``, ``klppo_lstm``, as the zoo's ``ppo_lstm``) are included when
    sb3-contrib is installed.

    :return: ``{"npg": NPG, "klppo": KLPPO, "npg_lstm": RecurrentNPG, "klppo_lstm": RecurrentKLPPO}``
    """
    names = ["npg", "klppo"]
    if importlib.util.find_spec("sb3_contrib") is not None:
        names += RECURRENT_ALGOS
    return {name: algorithm_class(name) for name in names}


def default_conf_file(algo: str) -> str:
    """
    The shipped hyperparameter file of one of our algorithms, as the zoo's ``--conf-file`` expects it.

    :param algo: ``"npg"``, ``"klppo"``, ``"npg_lstm"`` or ``"klppo_lstm"``
    :return: the path of ``sb3_npg/zoo/hyperparams/<algo>.yml``
    """
    return str(hyperparams_path(algo))


def with_schedules(preprocess: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """
    Extend the zoo's schedule preprocessing to the keys of ``SCHEDULE_KEYS`` (``"lin_0.1"`` -> a schedule).

    :param preprocess: the zoo's ``ExperimentManager._preprocess_schedules``
    :return: a preprocessing that runs ``preprocess``, then converts ``lin_<x>`` strings of ``SCHEDULE_KEYS``
    """
    if getattr(preprocess, "sb3_npg_schedules", False):
        return preprocess  # already extended

    def preprocess_schedules(hyperparams: dict[str, Any]) -> dict[str, Any]:
        hyperparams = preprocess(hyperparams)
        ours = {key: hyperparams[key] for key in SCHEDULE_KEYS if isinstance(hyperparams.get(key), str)}
        hyperparams.update(constructor_kwargs(ours))
        return hyperparams

    preprocess_schedules.sb3_npg_schedules = True  # type: ignore[attr-defined]
    return preprocess_schedules


def register() -> dict[str, type[BaseAlgorithm]]:
    """
    Register ``npg`` and ``klppo`` in rl-baselines3-zoo's algorithm registry and Optuna samplers/converters.

    Calling it again is harmless. It needs rl-zoo3 (``pip install "sb3-npg[zoo]"``).

    :return: the algorithms registered, by zoo name
    """
    try:
        import rl_zoo3.hyperparams_opt
        import rl_zoo3.utils
        from rl_zoo3.exp_manager import ExperimentManager

        from sb3_npg.zoo.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    except ImportError as error:
        raise ImportError(
            'The rl-baselines3-zoo integration needs rl_zoo3 and its dependencies: pip install "sb3-npg[zoo]"'
        ) from error

    registered = algorithms()
    rl_zoo3.utils.ALGOS.update(registered)
    rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER.update(HYPERPARAMS_SAMPLER)
    # Converters (raw trial parameters -> keyword arguments, for ``--trial-id``) only exist in recent zoos
    converters = getattr(rl_zoo3.hyperparams_opt, "HYPERPARAMS_CONVERTER", None)
    if converters is not None:
        converters.update(HYPERPARAMS_CONVERTER)
    extended = with_schedules(ExperimentManager._preprocess_schedules)
    ExperimentManager._preprocess_schedules = staticmethod(extended)  # type: ignore[method-assign,assignment]
    return registered
