"""
rl-baselines3-zoo integration: shipped hyperparameters, algorithm registry, Optuna samplers and the command line.

* :mod:`sb3_npg.zoo.config` reads the shipped zoo-format files (``hyperparams/npg.yml``, ``klppo.yml``) and
  builds models from them without rl-zoo3.
* :mod:`sb3_npg.zoo.registry` registers ``npg`` and ``klppo`` with rl-zoo3 (``register()``).
* :mod:`sb3_npg.zoo.hyperparams_opt` holds their Optuna search spaces.
* :mod:`sb3_npg.zoo.tuning` makes ``-optimize`` on a shared storage fault tolerant (heartbeats, retries of
  dead workers' trials, study checks, one-line storage errors).
* :mod:`sb3_npg.zoo.cli` is the ``sb3-npg`` command line.

Importing this package does not import rl-zoo3 or Optuna (``pip install "sb3-npg[zoo]"`` brings them).
"""
