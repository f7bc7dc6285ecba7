"""
Optuna search spaces for NPG and KLPPO, in rl-baselines3-zoo's sampler/converter convention.

A *sampler* ``sample_<algo>_params(trial, n_actions, n_envs, additional_args)`` draws the raw
parameters of one trial and returns the algorithm's keyword arguments. A *converter*
``convert_<algo>_params(params)`` turns the raw parameters stored in a study (``trial.params``) back into
keyword arguments: the zoo uses it to re-train a trial with ``--storage ... --study-name ... --trial-id N``.
Each sampler is its converter applied to what it drew, so the two always agree.

Raw parameters follow the zoo's names (``n_steps_pow``, ``one_minus_gamma``, ``net_arch``, ...), so
studies of NPG and sb3-contrib's TRPO read alike.

Two search spaces (``sb3-npg train -optimize --search-space``):

* ``full`` (the zoo's way): the update's parameters and the rollout length, minibatch size, discount, GAE
  lambda and network;
* ``update``: the update's parameters alone (NPG's trust region, solver and critic fit; KLPPO's penalty and
  its SGD schedule). Everything else is the hyperparameter file's entry: a few trials tune a working entry
  instead of searching for one.

The converters read both: a parameter a trial did not draw is left to the entry.

The samplers and converter of each *family* (``npg``, ``klppo``) are a :class:`SearchSpaceFamily` of
:data:`FAMILIES`; an algorithm's family is the ``search_space`` of its row in :data:`sb3_npg.zoo.algos.ALGOS`
(:func:`family`). :data:`HYPERPARAMS_SAMPLER`, :data:`UPDATE_SAMPLER`, :data:`HYPERPARAMS_CONVERTER` and
:data:`SEARCH_SPACES` give the same functions by algorithm, derived from that table.
"""

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from torch import nn

from sb3_npg.klppo.controllers import KL_ADAPTATIONS
from sb3_npg.zoo.algos import ALGOS, algo_spec

# ``sampler(trial, n_actions, n_envs, additional_args) -> keyword arguments`` and ``converter(params) -> keyword arguments``
Sampler = Callable[[optuna.Trial, int, int, dict[str, Any]], dict[str, Any]]
Converter = Callable[[dict[str, Any]], dict[str, Any]]

# Network sizes, shared by both algorithms (separate actor and critic networks)
NET_ARCHS: dict[str, dict[str, list[int]]] = {
    "tiny": dict(pi=[64], vf=[64]),
    "small": dict(pi=[64, 64], vf=[64, 64]),
    "medium": dict(pi=[256, 256], vf=[256, 256]),
}
ACTIVATION_FNS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def _choice(params: dict[str, Any], name: str, table: dict[str, Any]) -> Any:
    value = params[name]
    if value not in table:
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}")
    return table[value]


def _common_on_policy(params: dict[str, Any]) -> dict[str, Any]:
    """
    Keyword arguments shared by both algorithms: rollout length, minibatch size, discounting, network (none
    for a trial of the ``update`` space, which does not draw them).
    """
    if "n_steps_pow" not in params:
        return {}
    n_steps = 2 ** int(params["n_steps_pow"])
    # A minibatch never exceeds one environment's rollout, so it always divides ``n_steps * n_envs``
    batch_size = min(2 ** int(params["batch_size_pow"]), n_steps)
    return {
        "n_steps": n_steps,
        "batch_size": batch_size,
        "gamma": 1.0 - float(params["one_minus_gamma"]),
        "gae_lambda": 1.0 - float(params["one_minus_gae_lambda"]),
        "policy_kwargs": {
            "net_arch": _choice(params, "net_arch", NET_ARCHS),
            "activation_fn": _choice(params, "activation_fn", ACTIVATION_FNS),
        },
    }


def _sample_common_on_policy(trial: optuna.Trial) -> None:
    """Draw the parameters read by :func:`_common_on_policy`, and record the values they stand for."""
    n_steps_pow = trial.suggest_int("n_steps_pow", 7, 12)  # 128 to 4096 steps per environment
    batch_size_pow = trial.suggest_int("batch_size_pow", 5, 10)  # 32 to 1024
    one_minus_gamma = trial.suggest_float("one_minus_gamma", 1e-4, 0.1, log=True)
    trial.suggest_float("one_minus_gae_lambda", 1e-4, 0.1, log=True)
    trial.suggest_categorical("net_arch", list(NET_ARCHS))
    trial.suggest_categorical("activation_fn", list(ACTIVATION_FNS))
    # Readable values in the study (the zoo's convention)
    trial.set_user_attr("gamma", 1.0 - one_minus_gamma)
    trial.set_user_attr("n_steps", 2**n_steps_pow)
    trial.set_user_attr("batch_size", min(2**batch_size_pow, 2**n_steps_pow))
    _record_worker(trial)


def _record_worker(trial: optuna.Trial) -> None:
    """Record which worker ran the trial, for studies shared by several processes or machines."""
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")


def convert_npg_params(params: dict[str, Any]) -> dict[str, Any]:
    """
    NPG's keyword arguments from the raw parameters of a trial (``trial.params``), of either search space.

    :param params: the raw parameters drawn by :func:`sample_npg_params` or :func:`sample_npg_update_params`
    :return: keyword arguments for ``NPG``
    """
    kwargs = _common_on_policy(params)
    kwargs.update(
        learning_rate=float(params["learning_rate"]),
        target_kl=float(params["target_kl"]),
        cg_damping=float(params["cg_damping"]),
        cg_max_steps=int(params["cg_max_steps"]),
        n_critic_updates=int(params["n_critic_updates"]),
        line_search=bool(params["line_search"]),
    )
    if "damped_step_size" in params:  # studies from before it was searched did not draw it
        kwargs["damped_step_size"] = bool(params["damped_step_size"])
    return kwargs


def _sample_npg_update(trial: optuna.Trial, n_actions: int) -> None:
    """Draw NPG's update parameters: trust region, conjugate-gradient solve, step length, critic fit."""
    d = max(1, int(n_actions))
    trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)  # the critic's
    trial.suggest_float("target_kl", 1e-3, 0.1 * d, log=True)
    trial.suggest_float("cg_damping", 1e-3, max(0.5, 0.2 * d), log=True)
    trial.suggest_int("cg_max_steps", 5, 30)
    trial.suggest_int("n_critic_updates", 5, 30)
    trial.suggest_categorical("line_search", [False, True])
    trial.suggest_categorical("damped_step_size", [False, True])


def sample_npg_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """
    Sampler for NPG (``full`` space): trust-region size, conjugate-gradient solve, rollout, discounting,
    critic and network.

    NPG's KL is summed over the ``d`` dimensions of a continuous action, so the radius and the damping are
    searched up to ``d`` times what they would be for one dimension: ``target_kl`` in ``[1e-3, 0.1 d]`` and
    ``cg_damping`` in ``[1e-3, max(0.5, 0.2 d)]`` (HalfCheetah's zoo settings under TRPO's semantics, 0.24
    and 0.6, are inside). The bounds depend only on the environment, so a study's search space is fixed.

    :param trial: the Optuna trial
    :param n_actions: number of continuous actions (1 for a discrete action space, as the zoo passes it)
    :param n_envs: number of parallel environments (unused, part of the zoo's signature)
    :param additional_args: the zoo's extra information (unused, part of the zoo's signature)
    :return: keyword arguments for ``NPG``
    """
    _sample_common_on_policy(trial)
    _sample_npg_update(trial, n_actions)
    return convert_npg_params(trial.params)


def sample_npg_update_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    Sampler for NPG's ``update`` space: :func:`sample_npg_params`'s trust region, solver, step length and
    critic fit (same bounds), with the rollout, discounting and network of the hyperparameter file's entry.

    :param trial: the Optuna trial
    :param n_actions: number of continuous actions (1 for a discrete action space, as the zoo passes it)
    :param n_envs: number of parallel environments (unused, part of the zoo's signature)
    :param additional_args: the zoo's extra information (unused, part of the zoo's signature)
    :return: keyword arguments for ``NPG``
    """
    _sample_npg_update(trial, n_actions)
    _record_worker(trial)
    return convert_npg_params(trial.params)


def convert_klppo_params(params: dict[str, Any]) -> dict[str, Any]:
    """
    KLPPO's keyword arguments from the raw parameters of a trial (``trial.params``), of either search space.

    :param params: the raw parameters drawn by :func:`sample_klppo_params` or :func:`sample_klppo_update_params`
    :return: keyword arguments for ``KLPPO``
    """
    kwargs = _common_on_policy(params)
    kl_adaptation = params["kl_adaptation"]
    if kl_adaptation not in KL_ADAPTATIONS:
        raise ValueError(f"kl_adaptation must be one of {list(KL_ADAPTATIONS)}, got {kl_adaptation!r}")
    kwargs.update(
        learning_rate=float(params["learning_rate"]),
        n_epochs=int(params["n_epochs"]),
        target_kl=float(params["target_kl"]),
        kl_coef=float(params["kl_coef"]),
        kl_adaptation=kl_adaptation,
    )
    for name in ("ent_coef", "max_grad_norm", "kl_dual_lr"):  # not drawn by every trial
        if name in params:
            kwargs[name] = float(params[name])
    return kwargs


def _sample_klppo_update(trial: optuna.Trial) -> None:
    """Draw KLPPO's update parameters: the penalty (target, initial coefficient, controller) and its SGD schedule."""
    trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True)
    trial.suggest_categorical("n_epochs", [1, 5, 10, 20])
    trial.suggest_float("target_kl", 1e-3, 0.1, log=True)
    trial.suggest_float("kl_coef", 0.01, 10.0, log=True)
    kl_adaptation = trial.suggest_categorical("kl_adaptation", list(KL_ADAPTATIONS))
    if kl_adaptation == "dual":
        # Step size of the dual ascent on beta; only meaningful for that controller
        trial.suggest_float("kl_dual_lr", 1.0, 1000.0, log=True)


def sample_klppo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """
    Sampler for KLPPO (``full`` space): penalty target, initial coefficient and controller, SGD schedule,
    entropy bonus, gradient clipping, rollout, discounting and network.

    :param trial: the Optuna trial
    :param n_actions: number of continuous actions (unused, part of the zoo's signature)
    :param n_envs: number of parallel environments (unused, part of the zoo's signature)
    :param additional_args: the zoo's extra information (unused, part of the zoo's signature)
    :return: keyword arguments for ``KLPPO``
    """
    _sample_common_on_policy(trial)
    _sample_klppo_update(trial)
    trial.suggest_float("ent_coef", 1e-8, 0.1, log=True)
    trial.suggest_float("max_grad_norm", 0.3, 5.0, log=True)
    return convert_klppo_params(trial.params)


def sample_klppo_update_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    Sampler for KLPPO's ``update`` space: :func:`sample_klppo_params`'s penalty (target, initial coefficient,
    controller), learning rate and epochs (same bounds), with everything else from the hyperparameter
    file's entry (for the MuJoCo entries: PPO's tuned rollout, minibatches, entropy bonus and network).

    :param trial: the Optuna trial
    :param n_actions: number of continuous actions (unused, part of the zoo's signature)
    :param n_envs: number of parallel environments (unused, part of the zoo's signature)
    :param additional_args: the zoo's extra information (unused, part of the zoo's signature)
    :return: keyword arguments for ``KLPPO``
    """
    _sample_klppo_update(trial)
    _record_worker(trial)
    return convert_klppo_params(trial.params)


@dataclass(frozen=True)
class SearchSpaceFamily:
    """
    The samplers and the converter of one family of algorithms (the ``search_space`` of their row in
    :data:`sb3_npg.zoo.algos.ALGOS`).

    :param full: the sampler of the ``full`` space (the zoo's way: update, rollout, discounting and network)
    :param update: the sampler of the ``update`` space (the update's parameters alone)
    :param convert: the converter of the raw parameters of a trial of either space
    """

    full: Sampler
    update: Sampler
    convert: Converter

    def sampler(self, search_space: str = "full") -> Sampler:
        """
        The sampler of a ``--search-space``.

        :param search_space: ``"full"`` or ``"update"``
        :return: the sampler
        """
        samplers = {"full": self.full, "update": self.update}
        if search_space not in samplers:
            raise ValueError(f"search_space must be one of {', '.join(samplers)}, got {search_space!r}")
        return samplers[search_space]


FAMILIES: dict[str, SearchSpaceFamily] = {
    "npg": SearchSpaceFamily(sample_npg_params, sample_npg_update_params, convert_npg_params),
    "klppo": SearchSpaceFamily(sample_klppo_params, sample_klppo_update_params, convert_klppo_params),
}
"""The sampler families, by the ``search_space`` of :class:`sb3_npg.zoo.algos.AlgoSpec` (the recurrent algorithms
search their feed-forward counterpart's space; the LSTM keeps sb3-contrib's default size)."""


def family(algo: str) -> SearchSpaceFamily:
    """
    The sampler family that tunes one of this package's algorithms.

    :param algo: a zoo name of :data:`sb3_npg.zoo.algos.ALGOS`
    :return: its family
    """
    return FAMILIES[algo_spec(algo).search_space]


def _by_algorithm(pick: Callable[[SearchSpaceFamily], Any]) -> dict[str, Any]:
    """One entry of every family, for each algorithm of the table."""
    return {name: pick(FAMILIES[spec.search_space]) for name, spec in ALGOS.items()}


#: The ``full`` sampler of each algorithm, derived from the table (the zoo's ``HYPERPARAMS_SAMPLER`` takes them)
HYPERPARAMS_SAMPLER: dict[str, Sampler] = _by_algorithm(lambda samplers: samplers.full)
#: The ``update`` sampler of each algorithm, derived from the table
UPDATE_SAMPLER: dict[str, Sampler] = _by_algorithm(lambda samplers: samplers.update)
#: The converter of each algorithm, derived from the table (the zoo's ``HYPERPARAMS_CONVERTER`` takes them)
HYPERPARAMS_CONVERTER: dict[str, Converter] = _by_algorithm(lambda samplers: samplers.convert)
#: The samplers of each ``--search-space``, by algorithm
SEARCH_SPACES: dict[str, dict[str, Sampler]] = {"full": HYPERPARAMS_SAMPLER, "update": UPDATE_SAMPLER}
