"""
The policy's parameters: flat vectors and back, which of them feed the action distribution (the actor), and the
evaluation mode in which the policy is differentiated.
"""

import contextlib
import copy
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs


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


def probe_observation(space: spaces.Space) -> Any:
    """
    A finite observation of ``space`` to push through the policy: the point nearest zero of each ``Box``.

    A random sample of a ``Box`` with huge finite bounds (gymnasium 0.29 bounds CartPole's velocities by float32's
    largest value) can be about 1e38, which a ReLU network turns into inf and NaN, and ``torch.distributions``
    then refuses. Zero, clipped into the bounds, is finite and in the space. ``Dict`` spaces are probed key by
    key; any other space (discrete ones, whose samples are always small) is sampled from a copy, so that its
    random state is left as it was.

    :param space: an observation space
    :return: an observation in ``space``
    """
    if isinstance(space, spaces.Box):
        return np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)
    if isinstance(space, spaces.Dict):
        return {key: probe_observation(subspace) for key, subspace in space.spaces.items()}
    return copy.deepcopy(space).sample()


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
    mode and every buffer; the observation is :func:`probe_observation`'s, which leaves the observation
    space's random state as it was.

    :param policy: an SB3 actor-critic policy
    :return: the actor's parameters, in ``policy.parameters()`` order
    """
    observation = probe_observation(policy.observation_space)
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


def split_actor_critic(policy: ActorCriticPolicy) -> tuple[list[th.nn.Parameter], list[th.nn.Parameter]]:
    """
    Split the policy's trainable parameters into the actor's (see :func:`actor_parameters`) and the rest.

    :param policy: an SB3 actor-critic policy
    :return: the actor's parameters and the critic's own parameters, each in ``policy.parameters()`` order
    """
    actor_ids = {id(p) for p in actor_parameters(policy)}
    params = [p for p in policy.parameters() if p.requires_grad]
    return [p for p in params if id(p) in actor_ids], [p for p in params if id(p) not in actor_ids]
