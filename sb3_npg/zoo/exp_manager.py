"""
:class:`NPGExperimentManager`, rl-baselines3-zoo's ``ExperimentManager`` with this package's additions, and
:class:`StaleTrialsMaxTrialsCallback`, the ``--max-total-trials`` budget that fails dead workers' trials first.

``sb3-npg train`` builds an :class:`NPGExperimentManager` (:func:`sb3_npg.zoo.train.train`) where the zoo builds
its ``ExperimentManager``: the flags, callbacks, ``VecNormalize`` handling and log layout are the zoo's. The
subclass overrides

* ``__init__``: with ``--vec-env dummy`` (the default) the copies run in an
  :class:`~sb3_npg.common.vec_env.InfoCopyDummyVecEnv`, the zoo's ``DummyVecEnv`` with a cheaper copy of the infos;
* ``_preprocess_schedules``: ``lin_<x>`` strings of the keys of :data:`SCHEDULE_KEYS` (``target_kl``) become
  linear schedules too, beside the zoo's ``learning_rate``, ``clip_range``, ...;
* ``read_hyperparameters`` and ``load_trial``: ``--trial-id N`` re-trains any trial, trial 0 included, from a
  study checked for the algorithm and environment (:func:`sb3_npg.zoo.tuning.check_study`);
* ``objective``: our algorithms draw their trials from the ``--search-space`` sampler of their family
  (:mod:`sb3_npg.zoo.hyperparams_opt`);
* ``hyperparameters_optimization``: the storage is opened by :func:`sb3_npg.zoo.tuning.open_storage` (heartbeats,
  retries of dead workers' trials, safe creation of Optuna's tables, one-line errors) and handed to Optuna with
  the zoo's sampler and pruner; the study is checked before anything is written to it; ``--max-total-trials``
  counts with :class:`StaleTrialsMaxTrialsCallback`.

Nothing of the zoo or of Optuna is replaced. Importing this module imports rl-zoo3 and Optuna.
"""

import contextlib
import os
import pickle
import sys
import time
import warnings
from pprint import pprint
from typing import Any

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from rl_zoo3.callbacks import TrialEvalCallback
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER as ZOO_CONVERTERS
from rl_zoo3.utils import get_callback_list
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_npg.common.vec_env import InfoCopyDummyVecEnv
from sb3_npg.zoo.algos import ALGOS
from sb3_npg.zoo.config import constructor_kwargs
from sb3_npg.zoo.hyperparams_opt import Converter, family
from sb3_npg.zoo.registry import default_conf_file, register
from sb3_npg.zoo.tuning import (
    DEFAULT_SEARCH_SPACE,
    TuningError,
    TuningOptions,
    check_study,
    describe,
    fail_stale_trials,
    is_journal,
    journal_note,
    open_storage,
)

#: Keys our algorithms accept as ``lin_<x>`` schedules, beyond those the zoo already turns into schedules
SCHEDULE_KEYS = ("target_kl",)
#: The trial states ``--max-total-trials`` counts (the zoo's rule): running ones too, so that workers do not overshoot
BUDGET_STATES = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED)


class StaleTrialsMaxTrialsCallback(MaxTrialsCallback):
    """
    Optuna's ``MaxTrialsCallback`` (the zoo's ``--max-total-trials``) that fails the trials of dead workers before
    it counts.

    A dead worker's trial stays ``RUNNING``, and so counts, until Optuna fails it, which Optuna does only before a
    worker starts a trial: a worker ending the last trial of the budget would count it and stop, leaving it
    unretried. Failing stale trials first (:func:`sb3_npg.zoo.tuning.fail_stale_trials`) lets their retries run.

    :param n_trials: the number of trials of the whole study after which every worker stops
    :param states: the trial states counted (default: :data:`BUDGET_STATES`)
    """

    def __init__(self, n_trials: int, states: tuple[TrialState, ...] = BUDGET_STATES) -> None:
        super().__init__(n_trials, states=states)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """
        Fail the stale trials, then stop the study when the budget is spent.

        :param study: the study
        :param trial: the trial that just ended
        """
        fail_stale_trials(study)
        super().__call__(study, trial)


class NPGExperimentManager(ExperimentManager):
    """
    rl-baselines3-zoo's experiment manager with the ``target_kl`` schedules, the ``--search-space`` samplers and
    the fault-tolerant tuning of this package.

    It registers this package's algorithms with the zoo (:func:`sb3_npg.zoo.registry.register`), through whose
    registry the zoo builds and loads the models, and reads their shipped hyperparameter files unless ``config``
    names another. The zoo's own algorithms (``ppo``, ``trpo``, ...) keep the zoo's files, search spaces and
    converters.

    :param args: the zoo's ``ExperimentManager`` arguments (``args``, ``algo``, ``env_id``, ``log_folder``, ...)
    :param tuning: the search space of ``-optimize`` and the heartbeat and retries of a database storage
        (default: :class:`sb3_npg.zoo.tuning.TuningOptions` ``()``)
    :param kwargs: the zoo's ``ExperimentManager`` keyword arguments (``storage``, ``study_name``, ``trial_id``, ...)
    """

    def __init__(self, *args: Any, tuning: TuningOptions | None = None, **kwargs: Any) -> None:
        register()
        algo = args[1] if len(args) > 1 else kwargs.get("algo")
        if algo in ALGOS and kwargs.get("config") is None:
            # The zoo would look for <algo>.yml among its own files
            kwargs["config"] = default_conf_file(algo)
        super().__init__(*args, **kwargs)
        if self.vec_env_class is DummyVecEnv:  # --vec-env dummy, the zoo's default: the same copies, cheaper infos
            self.vec_env_class = InfoCopyDummyVecEnv
        self.tuning = tuning if tuning is not None else TuningOptions()

    @staticmethod
    def _preprocess_schedules(hyperparams: dict[str, Any]) -> dict[str, Any]:
        """
        The zoo's schedules, then ``lin_<x>`` strings of :data:`SCHEDULE_KEYS` as linear schedules (numbers are left alone).

        :param hyperparams: an entry of a hyperparameter file
        :return: the entry with its schedules
        """
        hyperparams = ExperimentManager._preprocess_schedules(hyperparams)
        ours = {key: hyperparams[key] for key in SCHEDULE_KEYS if isinstance(hyperparams.get(key), str)}
        hyperparams.update(constructor_kwargs(ours))
        return hyperparams

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """
        The zoo's reading of the hyperparameter file's entry, with the trial of ``--trial-id`` applied for every
        trial number (the zoo skips trial 0, whose number is false).

        The trial's parameters go where the zoo puts them: over the entry, under ``-params``.

        :return: the hyperparameters, and those to save in ``config.yml``
        """
        trial_id, custom = self.trial_id, self.custom_hyperparams
        if not (self.storage and self.study_name and trial_id is not None):
            return super().read_hyperparameters()
        print("Loading from Optuna study...")
        from_trial = self.load_trial(self.storage, self.study_name, trial_id)
        # The zoo then applies the trial's parameters as -params, which it applies after a trial's
        self.trial_id, self.custom_hyperparams = None, {**from_trial, **(custom or {})}
        try:
            return super().read_hyperparameters()
        finally:
            self.trial_id, self.custom_hyperparams = trial_id, custom

    def _converter(self) -> Converter:
        """The converter of the raw parameters of this algorithm's trials: its family's, or the zoo's."""
        if self.algo in ALGOS:
            return family(self.algo).convert
        return ZOO_CONVERTERS[self.algo]

    def load_trial(self, storage: str, study_name: str, trial_id: int | None = None, convert: bool = True) -> dict[str, Any]:
        """
        The hyperparameters of a trial of a study, for the algorithm and environment the study was created for.

        :param storage: the ``--storage`` argument
        :param study_name: the ``--study-name`` argument
        :param trial_id: the trial's number (``None``: the best trial)
        :param convert: whether to return the algorithm's keyword arguments rather than the raw parameters
        :return: the trial's hyperparameters
        :raises TuningError: when the storage cannot be opened, the study does not exist or is another algorithm's
            or environment's, or it has no such trial
        """
        try:
            study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
        except KeyError as error:
            raise TuningError(
                f"there is no study {study_name!r} in {describe(storage)}: check --study-name "
                "(optuna studies --storage URL lists them)"
            ) from error
        check_study(study, self.algo, self.env_name.gym_id, storage, writing=False)
        n_trials = len(study.trials)
        if trial_id is not None and not 0 <= trial_id < n_trials:
            raise TuningError(
                f"study {study_name!r} has {n_trials} trials: --trial-id must be 0 to {n_trials - 1}"
                if n_trials
                else f"study {study_name!r} has no trials yet: there is nothing to re-train"
            )
        params = study.best_trial.params if trial_id is None else study.trials[trial_id].params
        return self._converter()(params) if convert else params

    def objective(self, trial: optuna.Trial) -> float:
        """
        Train and evaluate one trial; our algorithms draw it from the ``--search-space`` sampler of their family.

        As in the zoo, the model is evaluated ``n_evaluations`` times (the pruner reads each evaluation) and a
        trial whose training fails on its hyperparameters (a NaN, say) is pruned. The zoo's own algorithms run
        the zoo's objective.

        :param trial: the Optuna trial
        :return: the mean reward of the last evaluation
        """
        spec = ALGOS.get(self.algo)
        if spec is None:
            return super().objective(trial)
        sampled = family(self.algo).sampler(self.tuning.search_space)(trial, self.n_actions, self.n_envs, {})
        env = self.create_envs(self.n_envs, no_log=True)
        model = spec.load()(
            env=env,
            tensorboard_log=None,
            seed=None,  # the zoo does not seed trials
            verbose=self.verbose if self.verbose >= 2 else 0,  # quiet trials, but in debug mode
            device=self.device,
            **{**self._hyperparams, **sampled},
        )
        eval_env = self.create_envs(n_envs=self.n_eval_envs, eval_env=True)
        path = None
        if self.optimization_log_path is not None:
            path = os.path.join(self.optimization_log_path, f"trial_{trial.number}")
        evaluation = TrialEvalCallback(
            eval_env,
            trial,
            best_model_save_path=path,
            log_path=path,
            n_eval_episodes=self.n_eval_episodes,
            eval_freq=max(int(self.n_timesteps / self.n_evaluations) // self.n_envs, 1),
            deterministic=self.deterministic_eval,
        )
        callbacks = [*get_callback_list({"callback": self.specified_callbacks}), evaluation]
        try:
            model.learn(self.n_timesteps, callback=callbacks)
        except (AssertionError, ValueError) as error:
            print(f"{error}\n============\nSampled hyperparams:")
            pprint(sampled)
            raise optuna.exceptions.TrialPruned() from error
        finally:
            env.close()
            eval_env.close()
        if evaluation.is_pruned:
            raise optuna.exceptions.TrialPruned()
        return evaluation.last_mean_reward

    def hyperparameters_optimization(self) -> None:
        """
        ``-optimize``: create or join the study, run this worker's trials, then write the zoo's report (and plots).

        :raises TuningError: when ``--search-space`` is not the zoo's for one of the zoo's algorithms, or when the
            storage or the study cannot be used
        """
        if self.algo not in ALGOS and self.tuning.search_space != DEFAULT_SEARCH_SPACE:
            raise TuningError(
                f"--search-space {self.tuning.search_space} is for --algo {', '.join(ALGOS)}; --algo {self.algo} has "
                f"only the zoo's search space (--search-space {DEFAULT_SEARCH_SPACE})"
            )
        if self.verbose > 0:
            print("Optimizing hyperparameters")
        if self.storage is not None and self.study_name is None:
            warnings.warn(
                f"--storage {describe(self.storage)} without --study-name: Optuna names the study; give every worker of "
                "a distributed search the same --study-name",
                stacklevel=2,
            )
        if self.tensorboard_log is not None:
            warnings.warn("TensorBoard logging is off during hyperparameter optimization", stacklevel=2)
            self.tensorboard_log = None
        study = self._create_study()
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the search, as in the zoo, and it is reported
            self._optimize(study)
        self._report(study)

    def _create_study(self) -> optuna.Study:
        """
        Create the study, or join it: on the storage :func:`sb3_npg.zoo.tuning.open_storage` opens, with the zoo's
        sampler and pruner; a shared study is checked and its dead workers' trials failed before it is used.

        :return: the study
        """
        storage = None
        if self.storage is not None:
            if is_journal(self.storage):
                journal_note(self.tuning.heartbeat)
            storage = open_storage(self.storage, self.tuning.heartbeat)
        if self.verbose > 0:
            print(f"Sampler: {self.sampler} - Pruner: {self.pruner}")
        study = optuna.create_study(
            sampler=self._create_sampler(self.sampler),
            pruner=self._create_pruner(self.pruner),
            storage=storage,
            study_name=self.study_name,
            load_if_exists=True,
            direction="maximize",
        )
        if self.storage is not None:
            check_study(study, self.algo, self.env_name.gym_id, self.storage, search_space=self.tuning.search_space)
            fail_stale_trials(study)  # before the budget is counted
        # The command and the entry's hyperparameters, as recent zoos record them, unless the study already holds
        # them (from an earlier worker, or a command written by whoever created the study)
        recorded = study.user_attrs
        if "command" not in recorded:
            study.set_user_attr("command", " ".join(sys.orig_argv))
        for key in sorted(set(self._hyperparams) - set(recorded)):
            study.set_user_attr(key, str(self._hyperparams[key]))
        return study

    def _optimize(self, study: optuna.Study) -> None:
        """
        Run this worker's trials: ``--n-trials`` of them, or until the study holds ``--max-total-trials``.

        :param study: the study
        """
        if self.max_total_trials is None:
            study.optimize(self.objective, n_jobs=self.n_jobs, n_trials=self.n_trials, gc_after_trial=True)
        elif len(study.get_trials(states=BUDGET_STATES)) < self.max_total_trials:
            budget = StaleTrialsMaxTrialsCallback(self.max_total_trials)
            study.optimize(self.objective, n_jobs=self.n_jobs, callbacks=[budget], gc_after_trial=True)

    def _report(self, study: optuna.Study) -> None:
        """
        Print the best trial, write the study to ``<log folder>/<algo>/report_<env>_....csv`` and ``.pkl`` as the
        zoo does, and show Optuna's plots unless ``--no-optim-plots``.

        :param study: the study
        """
        print("Number of finished trials: ", len(study.trials))
        best = study.best_trial
        print(f"Best trial:\nValue:  {best.value}\nParams: ")
        for key, value in best.params.items():
            print(f"    {key}: {value}")
        print("User Attributes: ")
        for key, value in best.user_attrs.items():
            print(f"    {key}: {value}")
        name = f"{self.n_trials}-trials-{self.n_timesteps}-{self.sampler}-{self.pruner}_{int(time.time())}"
        path = os.path.join(self.log_folder, self.algo, f"report_{self.env_name}_{name}")
        if self.verbose:
            print(f"Writing report to {path}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        study.trials_dataframe().to_csv(f"{path}.csv")
        with open(f"{path}.pkl", "wb+") as file:
            pickle.dump(study, file)
        if self.no_optim_plots:
            return
        try:
            optuna.visualization.plot_optimization_history(study).show()
            optuna.visualization.plot_param_importances(study).show()
        except (ValueError, ImportError, RuntimeError):
            pass
