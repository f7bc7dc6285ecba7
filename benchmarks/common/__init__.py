"""
The modules the benchmark scripts share (``benchmarks/common/``, imported as ``common``: Python puts a script's folder
first on ``sys.path``, so ``python benchmarks/<script>.py`` finds it beside the script).

- :mod:`common.algos`: the algorithms and suites: ours from :data:`sb3_npg.zoo.algos.ALGOS`, the zoo peers, their order;
- :mod:`common.entries`: the hyperparameter entries of a run (ours shipped, the peers' from rl-zoo3) and ``--variant``'s
  overrides;
- :mod:`common.cli`: command-line pieces: the scripts' parser, ``--variant`` (``learning.py``, ``cost.py``), ``--timesteps``;
- :mod:`common.evaluation`: the periodic deterministic evaluation, an SB3 ``EvalCallback``;
- :mod:`common.checkpoints`: a run's checkpoints (save, load, resume) and its clock across resumptions;
- :mod:`common.planner`: ``learning.py``'s runs (:class:`~common.planner.RunSpec`) from its command line;
- :mod:`common.run`: one run of ``learning.py``, and many at once in worker processes;
- :mod:`common.results`: the results files: CSV reading and writing, the learning benchmark's files and columns, the
  ``host`` and ``finished`` columns.
"""
