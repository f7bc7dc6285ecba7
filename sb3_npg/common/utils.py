"""Helpers shared by the algorithms: flat vectors, parameter ownership, actions, observation sub-sampling, input checks."""

import contextlib
import copy
import functools
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.common.utils import FloatSchedule


def as_schedule(value: float | Callable[[float], float]) -> FloatSchedule:
    """
    Turn a constant or a schedule of the progress remaining (1 -> 0) into SB3's ``FloatSchedule``.

    A constant becomes ``FloatSchedule(ConstantSchedule(value))``, as SB3 stores ``learning_rate`` and PPO's
    ``clip_range``: plain objects that pickle by class, so that a saved model loads on another machine or
    Python version. A callable is wrapped as it is (pass SB3's ``LinearSchedule`` rather than a lambda for a
    portable annealed value).

    :param value: a float, or a function of the progress remaining
    :return: the schedule
    """
    return FloatSchedule(value)


# The smallest KL target a schedule gives, as a fraction of its value at the start (progress remaining 1)
KL_TARGET_FLOOR = 0.01


def kl_target(schedule: Callable[[float], float], progress_remaining: float) -> float:
    """
    The KL target of an update (NPG's trust-region radius, KLPPO's penalty target) from its schedule.

    SB3's progress remaining goes from 1 to 0 over ``total_timesteps``, and below 0 once a rollout ends past
    them (the last rollout of a run whose total is not a multiple of the rollout's size, or a ``learn()``
    continued with ``reset_num_timesteps=False``). The rule: the schedule is evaluated at the progress clipped
    to ``[0, 1]``, so past its end a schedule keeps its end value; and a target is never below
    ``KL_TARGET_FLOOR`` (1%) of the schedule's value at progress 1, so a schedule that decays to 0 (the zoo's
    ``lin_<x>``) ends at ``x / 100``, never at 0. A value that is not a number is raised to the floor too.

    :param schedule: the schedule of the target (a constant's is constant)
    :param progress_remaining: the algorithm's ``_current_progress_remaining``
    :return: the target, strictly positive when the schedule's value at progress 1 is
    """
    value = schedule(min(max(progress_remaining, 0.0), 1.0))
    floor = KL_TARGET_FLOOR * schedule(1.0)
    return value if value >= floor else floor


# update_threads="auto" runs the update of a policy of at most this many parameters, on the CPU, on one torch thread
SMALL_POLICY_PARAMETERS = 100_000

SelfAlgorithm = TypeVar("SelfAlgorithm", bound=BaseAlgorithm)


def check_update_threads(value: Any) -> None:
    """
    Raise ``ValueError`` unless ``value`` is ``"auto"`` or an integer ``>= 0`` (the ``update_threads`` argument).

    :param value: the value given
    """
    if isinstance(value, str) and value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"update_threads must be 'auto' or an integer >= 0 (0: torch's own setting), got {value!r}")


def update_thread_count(update_threads: int | str, policy: th.nn.Module, device: th.device) -> int:
    """
    The number of torch threads an update runs on, ``0`` to leave torch's setting as it is.

    ``"auto"``: one thread for a policy of at most :data:`SMALL_POLICY_PARAMETERS` parameters on the CPU, whose
    operations are too small for threads to share (they wait on each other instead, and on other processes'
    threads on a busy machine); torch's setting for a larger policy or on a GPU.

    :param update_threads: the algorithm's ``update_threads``
    :param policy: the policy
    :param device: the algorithm's device
    :return: the number of threads, or 0
    """
    if update_threads != "auto":
        return int(update_threads)
    if th.device(device).type != "cpu":
        return 0
    return 1 if sum(p.numel() for p in policy.parameters()) <= SMALL_POLICY_PARAMETERS else 0


@contextlib.contextmanager
def torch_threads(n_threads: int) -> Iterator[None]:
    """
    Run the block on ``n_threads`` torch threads (``0``: torch's setting), then restore torch's setting.

    :param n_threads: the number of intra-op threads for the block, or 0
    """
    previous = th.get_num_threads()
    if n_threads == 0 or n_threads == previous:
        yield
        return
    th.set_num_threads(n_threads)
    try:
        yield
    finally:
        th.set_num_threads(previous)


def with_update_threads(train: Callable[[SelfAlgorithm], None]) -> Callable[[SelfAlgorithm], None]:
    """
    Decorate ``train()`` so that it runs on the torch threads of the algorithm's ``update_threads``
    (see :func:`update_thread_count`); torch's setting is restored when it returns, so rollouts, callbacks and
    the rest of the process keep theirs.

    :param train: the algorithm's ``train``
    :return: the decorated ``train``
    """

    @functools.wraps(train)
    def train_on_update_threads(self: SelfAlgorithm) -> None:
        update_threads = getattr(self, "update_threads", "auto")  # models saved before the argument: "auto"
        with torch_threads(update_thread_count(update_threads, self.policy, self.device)):
            train(self)

    return train_on_update_threads


def flat_concat(tensors: Sequence[th.Tensor]) -> th.Tensor:
    """
    Concatenate tensors into one 1-d tensor.

    :param tensors: tensors of any shapes
    :return: their flattened concatenation
    """
    return th.cat([t.reshape(-1) for t in tensors])


def unflatten_like(vector: th.Tensor, like: Sequence[th.Tensor]) -> list[th.Tensor]:
    """
    Split a 1-d tensor into views with the shapes of ``like`` (inverse of :func:`flat_concat`).

    :param vector: a 1-d tensor with as many elements as ``like`` in total
    :param like: tensors giving the shapes
    :return: the list of views
    """
    return [chunk.view_as(ref) for chunk, ref in zip(th.split(vector, [ref.numel() for ref in like]), like, strict=True)]


def _distribution_tensors(distribution: Any) -> list[th.Tensor]:
    inner = distribution.distribution
    parts = list(inner) if isinstance(inner, (list, tuple)) else [inner]
    tensors = []
    for part in parts:
        for name in part.arg_constraints:
            # Only read attributes the distribution already holds (reading ``probs`` of a
            # logits-parametrised Categorical would compute it, which is harmless but wasteful).
            value = part.__dict__.get(name)
            if isinstance(value, th.Tensor) and value.requires_grad:
                tensors.append(value)
    return tensors


def _sample_distribution(policy: ActorCriticPolicy, obs_tensor: PyTorchObs) -> Any:
    """The action distribution at one observation; a recurrent policy (sb3-contrib's) starts from a zero state."""
    hidden_shape = getattr(policy, "lstm_hidden_state_shape", None)
    if hidden_shape is None:
        return policy.get_distribution(obs_tensor)
    zeros = th.zeros(hidden_shape, device=policy.device)
    episode_starts = th.ones(1, device=policy.device)
    get_distribution: Any = policy.get_distribution  # sb3-contrib's signature: (obs, lstm_states, episode_starts)
    distribution, _ = get_distribution(obs_tensor, (zeros, zeros.clone()), episode_starts)
    return distribution


@contextlib.contextmanager
def differentiable_eval_mode(policy: BasePolicy) -> Iterator[None]:
    """
    Put the policy in eval mode (``set_training_mode(False)``) for a block that differentiates it, maybe twice.

    On CUDA, cuDNN's recurrent layers (LSTM, GRU) can be differentiated only once (a Fisher-vector product
    differentiates twice) and only after a forward pass in training mode. With a recurrent layer in the
    policy, cuDNN is switched off inside the block, and PyTorch's own kernels run the layers instead. The
    policy stays in eval mode after the block.

    :param policy: the policy
    """
    policy.set_training_mode(False)
    recurrent = any(isinstance(module, th.nn.RNNBase) for module in policy.modules())
    with th.backends.cudnn.flags(enabled=False) if recurrent else contextlib.nullcontext():
        yield


def actor_parameters(policy: ActorCriticPolicy) -> list[th.nn.Parameter]:
    """
    The parameters that feed the policy's action distribution, found from the autograd graph.

    A sample observation is pushed through ``policy.get_distribution``; a parameter belongs to the
    actor when the distribution's parameters depend on it. This finds a shared features extractor,
    ``log_std`` and any custom layer without relying on parameter names. A recurrent policy of
    sb3-contrib (``RecurrentActorCriticPolicy``) is run from a zero hidden state.

    The probe has no side effects: it runs in eval mode (BatchNorm uses its running statistics, Dropout
    is off, one observation is enough; see :func:`differentiable_eval_mode`), then restores the policy's
    mode and every buffer; the sample observation comes from a copy of the observation space, whose
    random state is left as it was.

    :param policy: an SB3 actor-critic policy
    :return: the actor's parameters, in ``policy.parameters()`` order
    """
    observation = copy.deepcopy(policy.observation_space).sample()
    obs_tensor, _ = policy.obs_to_tensor(observation)
    params = [p for p in policy.parameters() if p.requires_grad]
    modes = {module: module.training for module in policy.modules()}
    buffers = [(buffer, buffer.detach().clone()) for buffer in policy.buffers()]
    try:
        with differentiable_eval_mode(policy), th.enable_grad():
            outputs = _distribution_tensors(_sample_distribution(policy, obs_tensor))
            if not outputs:
                raise ValueError("the policy's action distribution has no parameters that depend on the policy's weights")
            total = sum(out.sum() for out in outputs)
            assert isinstance(total, th.Tensor)
            grads = th.autograd.grad(total, params, allow_unused=True)
    finally:
        with th.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        for module, training in modes.items():
            module.training = training
    return [p for p, g in zip(params, grads, strict=True) if g is not None]


def subsample_observations(observations: PyTorchObs, factor: int) -> PyTorchObs:
    """
    Every ``factor``-th observation (Dict observations are sub-sampled key by key).

    :param observations: a batch of observations, a tensor or a dict of tensors
    :param factor: keep one observation in ``factor``
    :return: the sub-sampled batch
    """
    if factor == 1:
        return observations
    if isinstance(observations, dict):
        return {key: value[::factor] for key, value in observations.items()}
    return observations[::factor]


def check_int(name: str, value: Any, minimum: int) -> None:
    """
    Raise ``ValueError`` unless ``value`` is an integer ``>= minimum`` (Python or NumPy integer, not a bool).

    :param name: the parameter's name, for the message
    :param value: the value given
    :param minimum: the smallest allowed value
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_float(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """
    Raise ``ValueError`` unless ``value`` is a finite real number in the given interval.

    Infinities are refused even where a bound is infinite: a parameter without an upper bound accepts
    any large finite value. The message names only values that are allowed: ``must be in [0.0, 1.0]``
    with two bounds, ``must be > 0.0`` with a lower bound alone.

    :param name: the parameter's name, for the message
    :param value: the value given
    :param low: lower bound (``-inf``: none)
    :param high: upper bound (``inf``: none)
    :param low_inclusive: whether ``low`` itself is allowed
    :param high_inclusive: whether ``high`` itself is allowed
    """
    allowed = _allowed_range(low, high, low_inclusive, high_inclusive)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{' ' + allowed if allowed else ''}, got {value!r}")
    number = float(value)
    below = number < low or (number == low and not low_inclusive)
    above = number > high or (number == high and not high_inclusive)
    if below or above:
        raise ValueError(f"{name} must be {allowed}, got {value}")  # a number as given: -1, 0.5 (NumPy's too)


def _allowed_range(low: float, high: float, low_inclusive: bool, high_inclusive: bool) -> str:
    """The finite values of an interval, in words: ``in [a, b)``, ``>= a``, ``< b``, or ``""`` for every number."""
    if math.isfinite(low) and math.isfinite(high):
        return f"in {'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
    if math.isfinite(low):
        return f"{'>=' if low_inclusive else '>'} {low}"
    if math.isfinite(high):
        return f"{'<=' if high_inclusive else '<'} {high}"
    return ""


def check_float_or_schedule(name: str, value: Any, low: float, low_inclusive: bool = False) -> None:
    """
    Like :func:`check_float` with no upper bound, but also accept a callable schedule (checked at progress 1).

    :param name: the parameter's name, for the message
    :param value: a number or a function of the progress remaining
    :param low: lower bound
    :param low_inclusive: whether ``low`` itself is allowed
    """
    if callable(value):
        check_float(f"{name}(1.0)", value(1.0), low=low, low_inclusive=low_inclusive)
    else:
        check_float(name, value, low=low, low_inclusive=low_inclusive)


def split_actor_critic(policy: ActorCriticPolicy) -> tuple[list[th.nn.Parameter], list[th.nn.Parameter]]:
    """
    Split the policy's trainable parameters into the actor's (see :func:`actor_parameters`) and the rest.

    :param policy: an SB3 actor-critic policy
    :return: the actor's parameters and the critic's own parameters, each in ``policy.parameters()`` order
    """
    actor_ids = {id(p) for p in actor_parameters(policy)}
    params = [p for p in policy.parameters() if p.requires_grad]
    return [p for p in params if id(p) in actor_ids], [p for p in params if id(p) not in actor_ids]


def policy_actions(actions: th.Tensor, action_space: spaces.Space) -> th.Tensor:
    """
    Actions from the rollout buffer in the form the policy's distribution takes (Discrete: a flat long tensor).

    :param actions: the buffer's actions, shape ``(n, action_dim)``
    :param action_space: the algorithm's action space
    :return: the actions, ready for ``distribution.log_prob``
    """
    if isinstance(action_space, spaces.Discrete):
        return actions.long().flatten()
    return actions


def check_rollout_size(n_steps: int, n_envs: int, batch_size: int | None, normalize_advantage: bool) -> None:
    """
    Check the rollout buffer's size ``n_steps * n_envs`` against the advantage normalisation and the minibatch size.

    Raise ``ValueError`` when advantages are normalized over fewer than 2 samples. Warn when ``batch_size``
    (if given) is larger than the buffer (every minibatch is then the whole rollout), or does not divide it
    (every epoch then ends with a truncated minibatch).

    :param n_steps: steps per environment per rollout
    :param n_envs: number of environments
    :param batch_size: minibatch size, or None to skip that check
    :param normalize_advantage: whether the advantages are normalized
    """
    buffer_size = n_steps * n_envs
    if normalize_advantage and buffer_size < 2:
        raise ValueError(
            f"n_steps * n_envs must be >= 2 when normalize_advantage=True, got n_steps={n_steps} and n_envs={n_envs}"
        )
    if batch_size is not None and batch_size > buffer_size:
        warnings.warn(
            f"batch_size={batch_size} is larger than the rollout buffer's size n_steps * n_envs = {buffer_size}: "
            f"every minibatch is the whole rollout of {buffer_size} samples. "
            "A batch_size that divides n_steps * n_envs is recommended."
        )
    elif batch_size is not None and buffer_size % batch_size > 0:
        warnings.warn(
            f"batch_size={batch_size} does not divide the rollout buffer's size n_steps * n_envs = {buffer_size}: "
            f"each epoch ends with a truncated minibatch of {buffer_size % batch_size} samples. "
            "A batch_size that divides n_steps * n_envs is recommended."
        )


def report_skipped_update(algorithm: str, reason: str | None, n_updates: int, verbose: int, warned: bool) -> bool:
    """
    Report a skipped update: a warning the first time, then a line per skip when ``verbose >= 1``.

    :param algorithm: the algorithm's name, for the messages
    :param reason: why the update was skipped, None when it was not (nothing is reported)
    :param n_updates: the update's number, for the message
    :param verbose: the algorithm's verbosity level
    :param warned: whether the warning was already given
    :return: whether the warning has been given now
    """
    if reason is None:
        return warned
    if not warned:
        warnings.warn(f"{algorithm} skipped an update ({reason}); parameters were kept. Further skips are only logged.")
    if verbose >= 1:
        print(f"{algorithm} update {n_updates} skipped: {reason}")
    return True
