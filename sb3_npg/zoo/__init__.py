"""
rl-baselines3-zoo integration: shipped hyperparameters, algorithm registry, Optuna samplers and the command line.

* :mod:`sb3_npg.zoo.algos` is the one table of this package's algorithms (zoo name, class, hyperparameter file,
  search space, recurrent or not); everything below reads it.
* :mod:`sb3_npg.zoo.config` reads the shipped zoo-format files (``hyperparams/npg.yml``, ``klppo.yml``, ...) and
  builds models from them without rl-zoo3.
* :mod:`sb3_npg.zoo.registry` adds our algorithms to rl-zoo3's registries (``register()``).
* :mod:`sb3_npg.zoo.hyperparams_opt` holds their Optuna search spaces.
* :mod:`sb3_npg.zoo.tuning` makes ``-optimize`` on a shared storage fault tolerant (heartbeats, retries of
  dead workers' trials, study checks, one-line storage errors) and parses this package's tuning flags.
* :mod:`sb3_npg.zoo.exp_manager` is :class:`~sb3_npg.zoo.exp_manager.NPGExperimentManager`, the zoo's
  ``ExperimentManager`` subclassed with all of the above, and :mod:`sb3_npg.zoo.train` runs the zoo's ``train``
  with it.
* :mod:`sb3_npg.zoo.cli` is the ``sb3-npg`` command line.

Importing this package does not import rl-zoo3 or Optuna (``pip install "sb3-npg[zoo]"`` brings them); importing
:mod:`sb3_npg.zoo.exp_manager` or :mod:`sb3_npg.zoo.train` does.
"""
