"""
Make ``npg`` and ``klppo`` first-class algorithms of rl-baselines3-zoo, without forking it.

The zoo looks algorithms up in three module-level dictionaries: ``rl_zoo3.utils.ALGOS`` (name -> class,
used by ``train``, ``enjoy``, ``record_video``, ...) and ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` /
``HYPERPARAMS_CONVERTER`` (Optuna search spaces). :func:`register` adds our entries to those very
objects, so every part of the zoo that imported them sees the new algorithms. Importing this module
does not import rl-zoo3; :func:`register` does.

.. code-block:: python

    from sb3_npg.zoo.registry import register

    register()  # now rl_zoo3.utils.ALGOS["npg"] is sb3_npg.NPG
"""

from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_npg.zoo.config import algorithm_class, hyperparams_path


def algorithms() -> dict[str, type[BaseAlgorithm]]:
    """
    The zoo names of this package's algorithms and their classes.

    :return: ``{"npg": NPG, "klppo": KLPPO}``
    """
    return {name: algorithm_class(name) for name in ("npg", "klppo")}


def default_conf_file(algo: str) -> str:
    """
    The shipped hyperparameter file of one of our algorithms, as the zoo's ``--conf-file`` expects it.

    :param algo: ``"npg"`` or ``"klppo"``
    :return: the path of ``sb3_npg/zoo/hyperparams/<algo>.yml``
    """
    return str(hyperparams_path(algo))


def register() -> dict[str, type[BaseAlgorithm]]:
    """
    Register ``npg`` and ``klppo`` in rl-baselines3-zoo's algorithm registry and Optuna samplers/converters.

    Calling it again is harmless. It needs rl-zoo3 (``pip install "sb3-npg[zoo]"``).

    :return: the algorithms registered, by zoo name
    """
    try:
        import rl_zoo3.hyperparams_opt
        import rl_zoo3.utils

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
    return registered
