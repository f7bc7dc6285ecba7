"""
Gauss-Newton and Fisher-vector products of SB3's MLP heads, by hand instead of by autograd.

:func:`~sb3_npg.common.fisher.gauss_newton_vector_product` works for any network: it builds the graph of ``J^T w``
once and runs two backward passes per product, one of them through that double graph. For the networks most users
train, SB3's ``MlpExtractor`` (linear layers and elementwise activations) with a linear head, ``J v`` and ``J^T u``
have a closed form that needs only what one forward pass leaves behind:

- a forward pass through the layers keeps each linear layer's input ``a`` and each activation's derivative
  ``sigma'(z)`` (taken once, by autograd, so that every elementwise activation is covered);
- ``J v`` pushes the tangent forward: ``t <- t W^T + a dW^T + db`` through a linear layer, ``t <- t * sigma'(z)``
  through an activation;
- ``J^T u`` pulls the cotangent back: ``dW = g^T a``, ``db = sum g`` and ``g <- g W`` through a linear layer,
  ``g <- g * sigma'(z)`` through an activation.

A product then costs about two matrix products per layer each way, with no graph to walk, and its intermediate
tensors are updated in place (``benchmarks/fvp_speed.py`` times it against autograd's:
``benchmarks/results/fvp_speed_cpu.md``). It is the same product up to rounding (``tests/test_mlp_products.py``
checks it against an explicitly formed ``J^T M J`` in float64, and against autograd's on SB3's policies).

:func:`actor_fisher_vector_product` and :func:`critic_jacobian` recognise the networks they can take (SB3's own
``MlpExtractor``, ``nn.Sequential`` of linear layers and the activations in :data:`ELEMENTWISE_ACTIVATIONS`, a
linear head, SB3's own ways of building the distribution and the values, and exactly the parameters asked for) and
return ``None`` for anything else, which the algorithms then differentiate with autograd. :class:`ActorJacobian` also
gives the action distribution and the policy gradient from the same forward pass, so that a natural-gradient step
walks the network's graph with autograd not at all. Nothing here reads a value on the host.
"""

import copy
from collections.abc import Callable, Sequence

import torch as th
from stable_baselines3.common.distributions import CategoricalDistribution, DiagGaussianDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import MlpExtractor
from torch import nn

from sb3_npg.common.fisher import FisherVectorProduct, MetricFn, state_scale
from sb3_npg.common.parameters import flat_concat, unflatten_like
from sb3_npg.common.policies import is_sb3s

#: The activations :class:`MlpJacobian` takes: each acts on every element on its own (its Jacobian is diagonal)
ELEMENTWISE_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.Tanh,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Softplus,
    nn.Hardtanh,
    nn.Identity,
)


def is_plain_mlp_layer(module: nn.Module) -> bool:
    """
    Whether :class:`MlpJacobian` can take the module: a linear layer or one of :data:`ELEMENTWISE_ACTIVATIONS`
    (the exact class, not a subclass, which could compute something else).

    :param module: a layer of a network
    """
    return type(module) is nn.Linear or type(module) in ELEMENTWISE_ACTIVATIONS


class MlpJacobian:
    """
    The Jacobian ``J`` of a chain of linear layers and elementwise activations with respect to the linear layers'
    parameters, at a batch of inputs, applied by hand.

    The constructor runs the forward pass once (without a graph) and keeps what the products need.

    :param layers: the chain, applied in order (see :func:`is_plain_mlp_layer`)
    :param inputs: the batch of inputs, shape ``(n, in_features)``; no gradient flows into them
    """

    def __init__(self, layers: Sequence[nn.Module], inputs: th.Tensor) -> None:
        unknown = [type(layer).__name__ for layer in layers if not is_plain_mlp_layer(layer)]
        if unknown:
            raise ValueError(f"layers must be nn.Linear or elementwise activations, got {', '.join(unknown)}")
        self.layers = [layer for layer in layers if type(layer) is not nn.Identity]
        self.params: list[th.Tensor] = []
        self._saved: list[th.Tensor] = []  # per layer: a linear layer's input, an activation's derivative
        x = inputs.detach()
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                self.params += [layer.weight] + ([layer.bias] if layer.bias is not None else [])
                self._saved.append(x)
                with th.no_grad():
                    x = layer(x)
            else:
                z = x.detach().requires_grad_(True)
                with th.enable_grad():
                    y = layer(z.clone())  # a clone: an in-place activation may not write into a leaf
                    (derivative,) = th.autograd.grad(y, z, th.ones_like(y))
                self._saved.append(derivative)
                x = y.detach()
        #: the chain's outputs at the inputs, shape ``(n, out_features)``
        self.outputs = x

    def jvp(self, tangents: Sequence[th.Tensor]) -> th.Tensor:
        """
        ``J v``: how the outputs move along a direction ``v`` of the parameters.

        :param tangents: ``v``, one tensor per parameter, in the order of :attr:`params`
        :return: a tensor shaped like :attr:`outputs` (not differentiable: the products run without a graph)
        """
        with th.no_grad():
            return self._jvp(tangents)

    def _jvp(self, tangents: Sequence[th.Tensor]) -> th.Tensor:
        # Every intermediate tensor is this function's own, so the updates run in place: a new tensor of a batch's
        # activations per operation costs about as much as the arithmetic (fresh memory to map)
        parts = iter(tangents)
        tangent: th.Tensor | None = None
        for layer, saved in zip(self.layers, self._saved, strict=True):
            if isinstance(layer, nn.Linear):
                moved = th.mm(saved, next(parts).t())
                if tangent is not None:
                    moved.addmm_(tangent, layer.weight.detach().t())
                if layer.bias is not None:
                    moved.add_(next(parts))
                tangent = moved
            elif tangent is not None:
                tangent.mul_(saved)
        if tangent is None:  # no linear layer: the outputs do not depend on any parameter
            return th.zeros_like(self.outputs)
        return tangent

    def vjp(self, cotangent: th.Tensor) -> list[th.Tensor]:
        """
        ``J^T u``: the gradient of ``sum(u * outputs)`` with respect to the parameters.

        :param cotangent: ``u``, shaped like :attr:`outputs`
        :return: one tensor per parameter, in the order of :attr:`params` (not differentiable)
        """
        with th.no_grad():
            return self._vjp(cotangent)

    def flat_vjp(self, cotangent: th.Tensor, params: Sequence[th.Tensor]) -> th.Tensor:
        """
        ``J^T u`` as one flat vector over ``params``: :meth:`vjp` in another order of the same parameters.

        :param cotangent: ``u``, shaped like :attr:`outputs`
        :param params: :attr:`params` in the order of the flat vector
        """
        grads = dict(zip(map(id, self.params), self.vjp(cotangent), strict=True))
        return flat_concat([grads[id(param)] for param in params])

    def _vjp(self, cotangent: th.Tensor) -> list[th.Tensor]:
        grads: list[th.Tensor] = []
        first_linear = next(i for i, layer in enumerate(self.layers) if isinstance(layer, nn.Linear))
        pull, own = cotangent, False  # the caller's tensor is never written to; the products' own ones are, in place
        for index in range(len(self.layers) - 1, first_linear - 1, -1):
            layer, saved = self.layers[index], self._saved[index]
            if isinstance(layer, nn.Linear):
                layer_grads = [th.mm(pull.t(), saved)] + ([pull.sum(dim=0)] if layer.bias is not None else [])
                grads = layer_grads + grads
                if index > first_linear:
                    pull, own = th.mm(pull, layer.weight.detach()), True
            elif own:
                pull.mul_(saved)
            else:
                pull, own = pull * saved, True
        return grads


def mlp_gauss_newton_vector_product(
    params: Sequence[th.Tensor],
    jacobian: MlpJacobian,
    metric: MetricFn,
    damping: float = 0.0,
    weights: th.Tensor | None = None,
    identity_blocks: Sequence[tuple[th.Tensor, float]] = (),
) -> FisherVectorProduct:
    """
    Build ``v -> (J^T M J / n + damping I) v`` from a hand-applied Jacobian, as
    :func:`~sb3_npg.common.fisher.gauss_newton_vector_product` builds it with autograd.

    :param params: the parameters of the flat vectors, in their order: each one of ``jacobian.params`` or of the
        identity blocks, every one of those exactly once
    :param jacobian: ``J``, at the states the product averages over
    :param metric: ``u -> M u`` on tensors shaped like ``jacobian.outputs``
    :param damping: Tikhonov damping ``lambda`` added to the product
    :param weights: optional non-negative per-state weights of the average (see
        :func:`~sb3_npg.common.fisher.gauss_newton_vector_product`); ``None`` weighs every state equally
    :param identity_blocks: parameters whose block of the matrix is a constant ``c I``, uncoupled from the rest, with
        their ``c`` (a state-independent ``log_std``: ``2``)
    :return: the product on flat vectors
    """
    params = list(params)
    blocks = {id(param): scale for param, scale in identity_blocks}
    position = {id(param): index for index, param in enumerate(jacobian.params)}
    if sorted(map(id, params)) != sorted([*position, *blocks]):
        raise ValueError("params must be exactly the Jacobian's parameters and the identity blocks' parameters")
    scale = state_scale(jacobian.outputs, weights)
    order = [position.get(id(param), -1) for param in params]

    def product(vector: th.Tensor) -> th.Tensor:
        parts = unflatten_like(vector, params)
        tangents: list[th.Tensor] = [parts[0]] * len(jacobian.params)
        for part, index in zip(parts, order, strict=True):
            if index >= 0:
                tangents[index] = part
        pulled = jacobian.vjp(metric(jacobian.jvp(tangents)) * scale)
        out = [
            pulled[index] if index >= 0 else blocks[id(param)] * part
            for param, part, index in zip(params, parts, order, strict=True)
        ]
        flat = flat_concat(out)
        return flat + damping * vector if damping else flat

    return product


def _mlp_extractor(policy: BasePolicy) -> MlpExtractor | None:
    extractor = getattr(policy, "mlp_extractor", None)
    return extractor if type(extractor) is MlpExtractor else None


def _plain_chain(*modules: nn.Module) -> list[nn.Module] | None:
    """The layers of the modules in order (an ``nn.Sequential`` is opened), or None if one is not plain."""
    layers: list[nn.Module] = []
    for module in modules:
        children = list(module) if type(module) is nn.Sequential else [module]
        if not all(is_plain_mlp_layer(layer) for layer in children):
            return None
        layers += children
    return layers if any(type(layer) is nn.Linear for layer in layers) else None


def _branch_jacobian(policy: BasePolicy, observations: th.Tensor, branch: str) -> MlpJacobian | None:
    """
    The Jacobian of the actor's head (``branch="actor"``: the distribution's parameters) or of the critic's (the
    values), when the policy computes it as SB3's ``ActorCriticPolicy`` does, through plain layers; else None.
    """
    extractor = _mlp_extractor(policy)
    if not isinstance(policy, ActorCriticPolicy) or extractor is None:
        return None
    methods: tuple[str, ...]
    if branch == "actor":
        methods = ("get_distribution", "_get_action_dist_from_latent")
        net, head, features_extractor = extractor.policy_net, policy.action_net, policy.pi_features_extractor
    else:
        methods = ("predict_values",)
        net, head, features_extractor = extractor.value_net, policy.value_net, policy.vf_features_extractor
    layers = _plain_chain(net, head)
    if layers is None or not all(is_sb3s(policy, name) for name in methods):
        return None
    with th.no_grad():
        features = BasePolicy.extract_features(policy, observations, features_extractor)
    return MlpJacobian(layers, features)


def _same_parameters(wanted: Sequence[th.Tensor], have: Sequence[th.Tensor]) -> bool:
    return sorted(map(id, wanted)) == sorted(map(id, have))


class ActorJacobian:
    """
    The actor of an SB3 MLP policy at a batch of states, by hand: one forward pass (an :class:`MlpJacobian` of the
    policy network and the head) gives the action distribution, the gradient of any objective of it and the exact
    Fisher-vector product, each without another pass through the network.

    Built by :func:`actor_jacobian`, which checks that the policy is one it can take.

    :param policy: the policy (SB3's diagonal Gaussian without gSDE, or its categorical distribution)
    :param jacobian: the Jacobian of the distribution's parameters (the mean or the logits) at the states
    :param params: the parameters of the flat vectors: exactly the Jacobian's and, for the Gaussian, ``log_std``
    """

    def __init__(self, policy: ActorCriticPolicy, jacobian: MlpJacobian, params: Sequence[th.Tensor]) -> None:
        self.policy = policy
        self.jacobian = jacobian
        self.params = list(params)
        self.gaussian = type(policy.action_dist) is DiagGaussianDistribution
        #: the parameters outside the Jacobian, each with its Fisher block ``c I`` (a state-independent ``log_std``: 2)
        self.identity_blocks: list[tuple[th.Tensor, float]] = [(policy.log_std, 2.0)] if self.gaussian else []
        if not _same_parameters(self.params, [*jacobian.params, *(param for param, _ in self.identity_blocks)]):
            raise ValueError("params must be exactly the actor network's and head's parameters (and log_std)")

    def distribution(self, outputs: th.Tensor | None = None) -> Distribution:
        """
        The action distribution at the states, as SB3's ``get_distribution`` builds it (a new object).

        :param outputs: the distribution's parameters (the mean or the logits) to build it from; ``None``: those of
            the forward pass, without a graph
        """
        outputs = self.jacobian.outputs if outputs is None else outputs
        distribution = copy.copy(self.policy.action_dist)
        if isinstance(distribution, DiagGaussianDistribution):
            return distribution.proba_distribution(outputs, self.policy.log_std)
        assert isinstance(distribution, CategoricalDistribution)
        return distribution.proba_distribution(outputs)

    def gradient(self, objective: Callable[[Distribution], th.Tensor]) -> th.Tensor:
        """
        The gradient of a scalar function of the action distribution with respect to :attr:`params`, flat: autograd
        from the objective back to the distribution's parameters (``log_std`` included), then ``J^T`` by hand.

        :param objective: the distribution -> a 0-d tensor (a surrogate loss)
        """
        outputs = self.jacobian.outputs.detach().requires_grad_(True)
        with th.enable_grad():
            value = objective(self.distribution(outputs))
            leaves = [outputs, *(param for param, _ in self.identity_blocks)]
            grads = th.autograd.grad(value, leaves, allow_unused=True, materialize_grads=True)
        pulled = dict(zip(map(id, self.jacobian.params), self.jacobian.vjp(grads[0]), strict=True))
        pulled.update(zip(map(id, leaves[1:]), grads[1:], strict=True))  # log_std's own gradient
        return flat_concat([pulled[id(param)] for param in self.params])

    def fisher_vector_product(self, damping: float = 0.0, weights: th.Tensor | None = None) -> FisherVectorProduct:
        """
        ``v -> (F + damping I) v``, the exact Fisher of the action distribution averaged over the states.

        :param damping: Tikhonov damping added to the product
        :param weights: optional per-state weights of the average
        """
        if self.gaussian:
            inverse_variance = th.exp(-2.0 * self.policy.log_std.detach())

            def metric(u: th.Tensor) -> th.Tensor:
                return u * inverse_variance

        else:
            probs = th.softmax(self.jacobian.outputs, dim=-1)

            def metric(u: th.Tensor) -> th.Tensor:
                return probs * u - probs * (probs * u).sum(dim=-1, keepdim=True)

        return mlp_gauss_newton_vector_product(self.params, self.jacobian, metric, damping, weights, self.identity_blocks)


def actor_jacobian(policy: BasePolicy, observations: th.Tensor, params: Sequence[th.Tensor]) -> ActorJacobian | None:
    """
    The actor of an SB3 MLP policy at the states, by hand (see :class:`ActorJacobian`), or None when the policy is
    not one it can take.

    Takes SB3's diagonal Gaussian (without gSDE: its block of ``log_std`` is ``2 I``) and its categorical
    distribution, built by SB3's own ``get_distribution`` from its own ``MlpExtractor`` and a linear ``action_net``.

    :param policy: the policy
    :param observations: the states (as SB3's ``get_distribution`` takes them)
    :param params: the parameters of the flat vectors: exactly the policy network's, the head's and ``log_std``
    """
    if not isinstance(policy, ActorCriticPolicy):
        return None
    if type(policy.action_dist) not in (DiagGaussianDistribution, CategoricalDistribution):
        return None
    jacobian = _branch_jacobian(policy, observations, "actor")
    if jacobian is None:
        return None
    blocks = [policy.log_std] if type(policy.action_dist) is DiagGaussianDistribution else []
    if not _same_parameters(params, [*jacobian.params, *blocks]):
        return None
    return ActorJacobian(policy, jacobian, params)


def actor_fisher_vector_product(
    policy: BasePolicy,
    observations: th.Tensor,
    params: Sequence[th.Tensor],
    damping: float = 0.0,
    weights: th.Tensor | None = None,
) -> FisherVectorProduct | None:
    """
    The exact Fisher-vector product of an SB3 MLP policy's action distribution, by hand (see :func:`actor_jacobian`
    for the policies it takes).

    :param policy: the policy
    :param observations: the states the Fisher averages over (as SB3's ``get_distribution`` takes them)
    :param params: the parameters of the flat vectors: exactly the policy network's, the head's and ``log_std``
    :param damping: Tikhonov damping added to the product
    :param weights: optional per-state weights of the average
    :return: the product on flat vectors, or None when the policy is not one of those
    """
    actor = actor_jacobian(policy, observations, params)
    return None if actor is None else actor.fisher_vector_product(damping, weights)


def critic_jacobian(policy: BasePolicy, observations: th.Tensor, params: Sequence[th.Tensor]) -> MlpJacobian | None:
    """
    The Jacobian of an SB3 MLP policy's values (shape ``(n, 1)``) with respect to the critic's parameters.

    :param policy: the policy, with SB3's own ``MlpExtractor``, a linear ``value_net`` and SB3's ``predict_values``
    :param observations: the states (as SB3's ``predict_values`` takes them)
    :param params: the critic's parameters: exactly the value network's and the head's
    :return: the Jacobian, or None when the critic is not of that kind
    """
    jacobian = _branch_jacobian(policy, observations, "critic")
    return jacobian if jacobian is not None and _same_parameters(params, jacobian.params) else None
