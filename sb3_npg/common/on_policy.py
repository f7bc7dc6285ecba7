"""
The base of the algorithms: :class:`KLOnPolicyAlgorithm`, SB3's ``OnPolicyAlgorithm`` with an update that aims at a
KL target, and what NPG and KLPPO share on top of SB3.

What the base holds:

- the arguments every algorithm takes (SB3's on-policy ones, ``target_kl`` and ``update_threads``): their checks,
  the call to SB3's ``OnPolicyAlgorithm``, the check of the rollout's size against the minibatches;
- the schedules (``target_kl``, and those a subclass names in ``_schedule_arguments``) stored as SB3's
  ``FloatSchedule``, those of models saved by sb3-npg 0.1.0 (floats, callables, ``<name>_schedule`` copies) included;
- the hooks that read a batch of the rollout buffer (``_actions``, ``_batch_weights``), which the recurrent versions
  override (:class:`~sb3_npg.common.recurrent.RecurrentRollouts`);
- ``learn()``, with SB3's signature, for the four algorithms (each run named after its class in TensorBoard).

And for the classes' documentation: :func:`document_parameters` writes each class's ``:param:`` list from the
descriptions in ``PARAMETERS`` and those the class adds, in the order of its signature, so that a parameter
shared by several classes is described once and one left undescribed is an error at import.

And for the constructors: each parameter that the algorithms share is declared once, with its default, in
:class:`KLOnPolicyAlgorithm`'s ``__init__``. An algorithm's ``__init__`` declares its own parameters and takes the shared
ones as ``**kwargs: Unpack[OnPolicyArguments]`` (:class:`OnPolicyArguments` names them for type checkers);
:func:`takes_parameters_of` gives it the whole signature at run time and checks each call against it. A recurrent
version inherits its feed-forward class's constructor.

``train()``, the policy's optimizer and what is saved besides SB3's attributes belong to each algorithm.
"""

import functools
import inspect
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypedDict, TypeVar, cast

import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, RolloutBufferSamples, Schedule

from sb3_npg.common.batches import policy_actions
from sb3_npg.common.checks import check_float, check_float_or_schedule, check_int, check_rollout_size
from sb3_npg.common.policies import CnnPolicy, MlpPolicy, MultiInputPolicy
from sb3_npg.common.schedules import as_schedule
from sb3_npg.common.threads import check_update_threads

SelfOnPolicyAlgorithm = TypeVar("SelfOnPolicyAlgorithm", bound="KLOnPolicyAlgorithm")
DocumentedClassT = TypeVar("DocumentedClassT", bound=type)
InitT = TypeVar("InitT", bound=Callable[..., None])

# The action spaces of every algorithm (SB3's PPO's)
SUPPORTED_ACTION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)

# The width of the generated ``:param:`` lines (those written by hand wrap at the code's 127 columns, indented)
DOCSTRING_WIDTH = 115

# What ``target_kl`` measures, after the role it has in an algorithm ("Trust-region radius ``delta``: ...")
KL_TARGET = (
    "the KL ``KL(pi_old || pi_new)``, summed over action dimensions and averaged over states, that one update aims at. "
    "It can be a function of the current progress remaining (from 1 to 0); past the end of the run it keeps its value "
    "at 0, and it is never below 1% of its value at 1 (see :func:`~sb3_npg.common.schedules.kl_target`)"
)

# The descriptions of the parameters that the algorithms share (a class may describe one its own way)
PARAMETERS: dict[str, str] = {
    "policy": "The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy)",
    "env": "The environment to learn from (if registered in Gym, can be str)",
    "learning_rate": "The learning rate, it can be a function of the current progress remaining (from 1 to 0)",
    "n_steps": (
        "The number of steps to run for each environment per update (the rollout buffer holds ``n_steps * n_envs`` "
        "transitions, which must be at least 2 when advantages are normalized)"
    ),
    "batch_size": "Minibatch size",
    "gamma": "Discount factor",
    "gae_lambda": "Factor for trade-off of bias vs variance for Generalized Advantage Estimator",
    "ent_coef": "Entropy coefficient for the loss calculation",
    "vf_coef": "Value function coefficient for the loss calculation",
    "max_grad_norm": "The maximum value for the gradient clipping",
    "use_sde": "Whether to use generalized State Dependent Exploration (gSDE) instead of action noise exploration",
    "sde_sample_freq": (
        "Sample a new noise matrix every n steps when using gSDE. Default: -1 (only sample at the beginning of the rollout)"
    ),
    "rollout_buffer_class": "Rollout buffer class to use. If ``None``, it will be automatically selected.",
    "rollout_buffer_kwargs": "Keyword arguments to pass to the rollout buffer on creation",
    "normalize_advantage": "Whether to normalize the advantages",
    "target_kl": "The KL target: " + KL_TARGET,
    "stats_window_size": (
        "Window size for the rollout logging, specifying the number of episodes to average the reported success rate, "
        "mean episode length, and mean reward over"
    ),
    "update_threads": (
        "torch's CPU threads during ``train()``, the update; torch's setting is restored when it returns, so that "
        'rollouts, callbacks and the rest of the process keep theirs. ``"auto"`` (default): one thread for a policy of '
        "at most 100,000 parameters on the CPU (the operations of a small network are too small to share: on a busy "
        "2-core machine its update ran 9 to 50 times slower on torch's default of two threads), torch's setting "
        "otherwise; ``n >= 1``: ``n`` threads; ``0``: torch's setting"
    ),
    "tensorboard_log": "the log location for tensorboard (if None, no logging)",
    "policy_kwargs": "additional arguments to be passed to the policy on creation",
    "verbose": (
        "Verbosity level: 0 for no output, 1 for info messages (such as device or wrappers used), 2 for debug messages"
    ),
    "seed": "Seed for the pseudo random generators",
    "device": (
        "Device (cpu, cuda, ...) on which the code should be run. Setting it to auto, the code will be run on the GPU "
        "if possible."
    ),
    "_init_setup_model": "Whether or not to build the network at the creation of the instance",
}

# How the recurrent versions describe the parameters they take differently
RECURRENT_PARAMETERS: dict[str, str] = {
    "policy": "The policy model to use (MlpLstmPolicy, CnnLstmPolicy, MultiInputLstmPolicy)",
    "rollout_buffer_class": (
        "Must be left unset (``None``): the recurrent rollout buffer (sb3-contrib's) is chosen from the observation space"
    ),
    "rollout_buffer_kwargs": "Must be left unset (``None``)",
}


def document_parameters(descriptions: Mapping[str, str]) -> Callable[[DocumentedClassT], DocumentedClassT]:
    """
    Class decorator: end the class's docstring with a ``:param name:`` line for every parameter of its ``__init__``.

    The lines follow the signature's order. A parameter's description is the one in ``descriptions``, else the one
    its nearest documented base class used (down to ``PARAMETERS``, through :class:`KLOnPolicyAlgorithm`).

    :param descriptions: the class's own descriptions, by parameter name
    :return: the decorator
    :raises TypeError: (at import) when a parameter has no description
    """

    def decorate(cls: DocumentedClassT) -> DocumentedClassT:
        merged = {**getattr(cls, "_parameter_descriptions", {}), **descriptions}
        names = [name for name in inspect.signature(cls).parameters if name not in ("args", "kwargs")]
        missing = [name for name in names if name not in merged]
        if missing:
            raise TypeError(f"{cls.__name__}'s parameters {missing} have no description")
        fields = [_field(name, merged[name]) for name in names]
        cls.__doc__ = "\n\n".join([inspect.cleandoc(cls.__doc__ or ""), "\n".join(fields)])
        setattr(cls, "_parameter_descriptions", merged)  # noqa: B010 (a class attribute the decorator adds)
        return cls

    return decorate


def _field(name: str, description: str) -> str:
    """The ``:param name: description`` field, wrapped, never inside an inline literal such as ``n_steps * n_envs``."""
    # Spaces inside literals become NUL characters for the wrapping, which cannot break there
    unbreakable = re.sub(r"``.+?``", lambda literal: literal.group().replace(" ", "\0"), description)
    lines = textwrap.wrap(
        f":param {name}: {unbreakable}",
        width=DOCSTRING_WIDTH,
        subsequent_indent="    ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(lines).replace("\0", " ")


class OnPolicyArguments(TypedDict, total=False):
    """
    The arguments that every algorithm hands on to :class:`KLOnPolicyAlgorithm` unchanged, through ``**kwargs``.

    They are the base's parameters that have a default (the test suite checks that the two agree). An algorithm's
    ``__init__`` declares its own parameters and takes these as ``**kwargs: Unpack[OnPolicyArguments]``, so that
    type checkers and IDEs know their names and types; :func:`takes_parameters_of` gives it the whole signature at
    run time, defaults included.
    """

    n_steps: int
    gamma: float
    gae_lambda: float
    use_sde: bool
    sde_sample_freq: int
    rollout_buffer_class: type[RolloutBuffer] | None
    rollout_buffer_kwargs: dict[str, Any] | None
    normalize_advantage: bool
    target_kl: float | Schedule
    stats_window_size: int
    update_threads: int | str
    tensorboard_log: str | None
    policy_kwargs: dict[str, Any] | None
    verbose: int
    seed: int | None
    device: th.device | str


def takes_parameters_of(function: Callable[..., Any]) -> Callable[[InitT], InitT]:
    """
    Decorator: an ``__init__`` that hands the parameters of ``function`` that have a default on through ``**kwargs``.

    The decorated function's signature, as ``inspect.signature`` (``help()``, the documentation,
    :func:`document_parameters`) reports it, becomes its own parameters with, before its ``_init_setup_model`` (at the
    end if it has none), each parameter of ``function`` that has a default and that it does not declare itself, in
    ``function``'s order, keyword-only (it reaches ``**kwargs`` by name only) and with its default and annotation.
    Every call is bound to that signature first, so that a misspelt argument, or one that the class does not take
    (``ent_coef`` for NPG), is a ``TypeError`` that names the class being built, as Python's own would. A subclass
    that defines no ``__init__`` (the recurrent versions) has the same signature, for type checkers too.

    :param function: the ``__init__`` that receives ``**kwargs`` (the base's, or the class the decorated one extends)
    :return: the decorator
    :raises TypeError: (at import) when the decorated function does not end with ``**kwargs``
    """
    handed_on = [
        parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for parameter in inspect.signature(function).parameters.values()
        if parameter.default is not inspect.Parameter.empty
    ]

    def decorate(init: InitT) -> InitT:
        own = list(inspect.signature(init).parameters.values())
        if not own or own[-1].kind is not inspect.Parameter.VAR_KEYWORD:
            raise TypeError(f"{init.__qualname__} must take **kwargs to hand parameters on to {function.__qualname__}")
        own.pop()
        names = {parameter.name for parameter in own}
        at = next((i for i, parameter in enumerate(own) if parameter.name == "_init_setup_model"), len(own))
        signature = inspect.Signature([*own[:at], *(p for p in handed_on if p.name not in names), *own[at:]])

        @functools.wraps(init)
        def checked(*args: Any, **kwargs: Any) -> None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as error:
                # The class built (a subclass that inherits this __init__ included), as Python's own message would
                owner = f"{type(args[0]).__name__}.__init__" if args else init.__qualname__
                raise TypeError(f"{owner}() {error}") from None
            init(*args, **kwargs)

        setattr(checked, "__signature__", signature)  # noqa: B010 (inspect's protocol for a function's signature)
        return cast(InitT, checked)

    return decorate


@document_parameters(PARAMETERS)
class KLOnPolicyAlgorithm(OnPolicyAlgorithm):
    """
    The base of the algorithms: an SB3 on-policy algorithm whose update aims at a KL target (``target_kl``).

    It checks the arguments the algorithms share and hands them to SB3's ``OnPolicyAlgorithm``; stores
    ``target_kl`` (and the other schedules a subclass names in ``_schedule_arguments``) as SB3's ``FloatSchedule``;
    reads the actions and the weights of a rollout batch (``_actions``, ``_batch_weights``, hooks that the
    recurrent versions override); and gives ``learn()`` the algorithm's name as the default TensorBoard run name.
    A subclass checks its own arguments before calling ``__init__``, passing on the parameters declared here with a
    default through ``**kwargs`` (:func:`takes_parameters_of`), then calls ``self._setup_model()``.

    ``ent_coef``, ``vf_coef`` and ``max_grad_norm`` go to SB3 as they are: NPG, which has none of them, passes 0.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    # The arguments that may be schedules, stored as SB3's FloatSchedule (None stays None)
    _schedule_arguments: ClassVar[tuple[str, ...]] = ("target_kl",)

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        *,
        learning_rate: float | Schedule,
        batch_size: int,
        ent_coef: float,
        vf_coef: float,
        max_grad_norm: float,
        n_steps: int = 2048,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        normalize_advantage: bool = True,
        target_kl: float | Schedule = 0.01,
        stats_window_size: int = 100,
        update_threads: int | str = "auto",
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
    ):
        check_float_or_schedule("learning_rate", learning_rate, low=0.0, low_inclusive=False)
        check_int("n_steps", n_steps, 1)
        check_int("batch_size", batch_size, 1)
        check_float("gamma", gamma, 0.0, 1.0)
        check_float("gae_lambda", gae_lambda, 0.0, 1.0)
        check_int("sde_sample_freq", sde_sample_freq, -1)
        check_float_or_schedule("target_kl", target_kl, low=0.0, low_inclusive=False)
        check_int("stats_window_size", stats_window_size, 1)
        check_update_threads(update_threads)

        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            rollout_buffer_class=rollout_buffer_class,
            rollout_buffer_kwargs=rollout_buffer_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            seed=seed,
            _init_setup_model=False,
            supported_action_spaces=SUPPORTED_ACTION_SPACES,
        )

        if self.env is not None:
            check_rollout_size(n_steps, self.env.num_envs, batch_size, normalize_advantage)
        self.batch_size = batch_size
        self.normalize_advantage = normalize_advantage
        self.target_kl = as_schedule(target_kl)
        self.update_threads = update_threads
        self._skip_warned = False

    def _setup_model(self) -> None:
        super()._setup_model()
        self._store_schedules()

    def _store_schedules(self) -> None:
        """
        Store every schedule argument as SB3's ``FloatSchedule``, never as a lambda, so that a saved model is portable.

        Models saved with version 0.1.0 hold them as floats or callables, and a ``<name>_schedule`` copy of each,
        dropped here.
        """
        for name in self._schedule_arguments:
            value = getattr(self, name)
            setattr(self, name, None if value is None else as_schedule(value))
            self.__dict__.pop(f"{name}_schedule", None)

    def _actions(self, batch: RolloutBufferSamples) -> th.Tensor:
        """The actions of a batch in the form the policy's distribution takes (Discrete: a flat long tensor)."""
        return policy_actions(batch.actions, self.action_space)

    def _batch_weights(self, batch: RolloutBufferSamples) -> th.Tensor | None:
        """Per-sample weights of every mean over ``batch``: ``None`` (all count); the padding mask for sequences."""
        return None

    def learn(
        self: SelfOnPolicyAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfOnPolicyAlgorithm:
        """
        Return a trained model.

        :param total_timesteps: The total number of samples (env steps) to train on
            Note: it is a lower bound, see `issue #1150 <https://github.com/DLR-RM/stable-baselines3/issues/1150>`_
        :param callback: callback(s) called at every step with state of the algorithm.
        :param log_interval: the number of training iterations (i.e., ``log_interval * n_steps * n_envs``
            timesteps) before logging
        :param tb_log_name: the name of the run for TensorBoard logging; ``None`` (default): the algorithm's
            class name (``NPG``, ``RecurrentKLPPO``, ...), as SB3's algorithms name theirs
        :param reset_num_timesteps: whether or not to reset the current timestep number (used in logging)
        :param progress_bar: Display a progress bar using tqdm and rich.
        :return: the trained model
        """
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=type(self).__name__ if tb_log_name is None else tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
