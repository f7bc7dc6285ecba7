"""
Fisher-vector products for SB3 policies, without ever forming the Fisher matrix.

For a policy whose action distribution at state ``s`` has parameters ``mu(s; theta)`` the Fisher
matrix is ``F = E_s[J^T M J]`` with ``J = d mu / d theta`` and ``M`` the Fisher of the distribution
with respect to its own parameters, known in closed form for every distribution SB3's on-policy
policies produce. ``F v`` is then one Jacobian-vector product and one vector-Jacobian product. The
Jacobian-vector product uses the double-VJP trick: ``J^T w`` is built once (as a graph that is linear
in a dummy ``w``) and differentiated with respect to ``w`` for every vector.

For any other distribution :func:`kl_hessian_vector_product` differentiates a mean KL twice. That is the
exact Fisher only when the KL is exact (PyTorch's closed form). With the sample estimator
``(r - 1) - log r`` of the actions taken, its Hessian at ``theta' = theta`` is the mean outer product of
the scores ``grad log pi(a_i|s_i)`` of those actions: a Monte Carlo estimate of the Fisher (one action per
state, unbiased when the actions were drawn from the current policy), not the Fisher itself.
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch as th
from stable_baselines3.common.distributions import Distribution

from sb3_npg.common.parameters import flat_concat, unflatten_like

MetricFn = Callable[[th.Tensor], th.Tensor]
FisherVectorProduct = Callable[[th.Tensor], th.Tensor]


class DistributionParameters(NamedTuple):
    """
    The per-state parameters of an action distribution and the closed-form Fisher ``M`` of each.

    :param outputs: tensors of shape ``(n_states, ...)``, differentiable with respect to the policy parameters
    :param metrics: for each output, the function ``u -> M u`` (``u`` of the same shape as the output)
    """

    outputs: list[th.Tensor]
    metrics: list[MetricFn]


def _normal_metrics(scale: th.Tensor) -> list[MetricFn]:
    inv_var = scale.detach().pow(-2)
    return [lambda u: u * inv_var, lambda u: 2.0 * u * inv_var]


def _categorical_metric(probs: th.Tensor) -> MetricFn:
    p = probs.detach()
    return lambda u: p * u - p * (p * u).sum(dim=-1, keepdim=True)


def _bernoulli_metric(probs: th.Tensor) -> MetricFn:
    weight = probs.detach() * (1.0 - probs.detach())
    return lambda u: weight * u


def distribution_parameters(distribution: Distribution) -> DistributionParameters | None:
    """
    The distribution's own parameters with their closed-form Fisher, or None when there is none.

    ========================================  ====================  ==============================
    torch distribution inside the SB3 one      parameters            ``M u``
    ========================================  ====================  ==============================
    ``Normal`` (diagonal Gaussian, gSDE)       mean, std             ``u / std^2``, ``2 u / std^2``
    ``Categorical`` (one per sub-action)       logits, ``p``         ``p u - p (p . u)``
    ``Bernoulli``                              logits, ``p``         ``p (1 - p) u``
    ========================================  ====================  ==============================

    Writing the Gaussian in terms of its standard deviation covers both a state-independent
    ``log_std`` (the chain rule turns ``2 / std^2`` into ``2`` for it) and gSDE's state-dependent std.

    :param distribution: an SB3 distribution whose parameters have been set with a graph to the policy
    :return: the outputs and their metrics, or None for an unknown distribution
    """
    inner = distribution.distribution
    parts = list(inner) if isinstance(inner, (list, tuple)) else [inner]
    outputs: list[th.Tensor] = []
    metrics: list[MetricFn] = []
    for part in parts:
        if type(part) is th.distributions.Normal:
            outputs += [part.loc, part.scale]
            metrics += _normal_metrics(part.scale)
        elif type(part) is th.distributions.Categorical:
            outputs.append(part.logits)
            metrics.append(_categorical_metric(part.probs))
        elif type(part) is th.distributions.Bernoulli:
            outputs.append(part.logits)
            metrics.append(_bernoulli_metric(part.probs))
        else:
            return None
    return DistributionParameters(outputs, metrics)


def state_scale(output: th.Tensor, weights: th.Tensor | None = None) -> float | th.Tensor:
    """
    What each state's term of an average over the states of ``output`` is multiplied by: ``1 / n``, or with
    ``weights`` each state's share ``w_i / sum(w)``, shaped to broadcast against ``output``.

    :param output: a per-state tensor of shape ``(n, ...)``
    :param weights: optional non-negative per-state weights of shape ``(n,)``, not all zero
    :return: the scale (a float, or a tensor of the output's dtype)
    """
    n = output.shape[0]
    if weights is None:
        return 1.0 / n
    if weights.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {tuple(weights.shape)}")
    normalized = (weights.detach() / weights.detach().sum()).to(output.dtype)
    return normalized.view(-1, *([1] * (output.dim() - 1)))


def gauss_newton_vector_product(
    params: Sequence[th.Tensor],
    outputs: Sequence[th.Tensor],
    metrics: Sequence[MetricFn],
    damping: float = 0.0,
    weights: th.Tensor | None = None,
) -> FisherVectorProduct:
    """
    Build ``v -> (J^T M J / n + damping I) v`` for outputs of shape ``(n, ...)`` and their metrics.

    The graph of ``J^T w`` is built here, once; every call of the returned function then costs one
    backward pass through that (linear) graph for ``J v`` and one ordinary backward pass for
    ``J^T (M J v)``. The returned function keeps the graphs alive; drop it to free them.

    With ``weights`` each state counts by its weight, ``J^T W M J / sum(w)``: a weight of 0 (the padding
    of a batch of sequences) takes a state out of the average. For a recurrent policy, ``outputs`` come
    from the unrolled network, so ``J`` differentiates through time over each sequence.

    :param params: the parameters ``theta`` (all must influence at least one output)
    :param outputs: the per-state distribution parameters ``mu(s; theta)``
    :param metrics: for each output, ``u -> M u``
    :param damping: Tikhonov damping ``lambda`` added to the product
    :param weights: optional non-negative per-state weights of shape ``(n,)`` (a 0/1 mask, for instance),
        not all zero; ``None`` weighs every state equally
    :return: the Fisher-vector product on flat vectors
    """
    params = list(params)
    outputs = list(outputs)
    scales = [state_scale(out, weights) for out in outputs]
    dummies = [th.zeros_like(out, requires_grad=True) for out in outputs]
    jacobian_t_dummy = th.autograd.grad(outputs, params, grad_outputs=dummies, create_graph=True)

    def fisher_vector_product(vector: th.Tensor) -> th.Tensor:
        jvp = th.autograd.grad(
            jacobian_t_dummy,
            dummies,
            grad_outputs=unflatten_like(vector, params),
            retain_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )
        metric_jvp = [metric(u) * scale for metric, u, scale in zip(metrics, jvp, scales, strict=True)]
        product = flat_concat(th.autograd.grad(outputs, params, grad_outputs=metric_jvp, retain_graph=True))
        return product + damping * vector if damping else product

    return fisher_vector_product


def kl_hessian_vector_product(params: Sequence[th.Tensor], mean_kl: th.Tensor, damping: float = 0.0) -> FisherVectorProduct:
    """
    Build ``v -> (H v + damping v)`` with ``H`` the Hessian of ``mean_kl`` with respect to ``params``.

    At ``theta_new = theta_old`` the Hessian of the exact ``KL(pi_old || pi_new)`` is the Fisher matrix,
    so this is the generic fallback for distributions without a closed-form metric. What it computes is
    the Hessian of ``mean_kl`` as given: for the sample estimator ``(r - 1) - log r`` of actions ``a_i``
    (with ``r = 1`` at ``theta``), that Hessian is ``mean_i grad log pi(a_i|s_i) grad log pi(a_i|s_i)^T``,
    the Monte Carlo Fisher of those actions. It costs a double backward pass per product.

    :param params: the parameters ``theta``
    :param mean_kl: the mean KL between a detached copy of the policy and the policy, as a function of ``params``
    :param damping: Tikhonov damping added to the product
    :return: the Hessian-vector product on flat vectors
    """
    params = list(params)
    grad_kl = flat_concat(th.autograd.grad(mean_kl, params, create_graph=True))

    def hessian_vector_product(vector: th.Tensor) -> th.Tensor:
        product = flat_concat(
            th.autograd.grad(grad_kl @ vector, params, retain_graph=True, allow_unused=True, materialize_grads=True)
        )
        return product + damping * vector if damping else product

    return hessian_vector_product


def fisher_vector_product(
    params: Sequence[th.Tensor],
    distribution: Distribution,
    mean_kl: Callable[[], th.Tensor] | None = None,
    damping: float = 0.0,
    weights: th.Tensor | None = None,
) -> FisherVectorProduct:
    """
    The cheapest Fisher-vector product available for ``distribution``.

    Uses :func:`gauss_newton_vector_product` (the exact Fisher) when :func:`distribution_parameters`
    knows the distribution, else :func:`kl_hessian_vector_product` on ``mean_kl()``: the exact Fisher
    when ``mean_kl`` is a closed-form KL, the Monte Carlo Fisher of the sampled actions when it is the
    sample estimator (see :func:`kl_hessian_vector_product`).

    :param params: the policy parameters the product is taken over
    :param distribution: the action distribution at the states the Fisher is averaged over,
        with a graph to ``params``
    :param mean_kl: called only for the fallback: returns the mean ``KL(pi_old || pi)`` at those states,
        ``pi_old`` being a detached copy of ``distribution`` (closed form, or the sample estimator; weighted by
        ``weights`` when given)
    :param damping: Tikhonov damping added to the product
    :param weights: optional per-state weights of the average (see :func:`gauss_newton_vector_product`)
    :return: the product on flat vectors
    """
    parameters = distribution_parameters(distribution)
    if parameters is not None:
        return gauss_newton_vector_product(params, parameters.outputs, parameters.metrics, damping, weights)
    if mean_kl is None:
        raise ValueError(
            f"{type(distribution.distribution).__name__} has no closed-form Fisher: pass mean_kl for the fallback"
        )
    return kl_hessian_vector_product(params, mean_kl(), damping)


def natural_step_size(sfs: th.Tensor, target_kl: float | th.Tensor) -> th.Tensor:
    """
    Step length ``sqrt(2 delta / s^T F s)`` that puts the quadratic KL model of ``step_size * s`` at ``delta``.

    Use the *undamped* ``s^T F s``: damping only regularises the solve, a damped quadratic form would
    make the step undershoot ``delta``. A non-positive or non-finite ``s^T F s`` gives NaN, which
    callers treat as a failed update.

    :param sfs: the quadratic form ``s^T F s`` of the search direction ``s``
    :param target_kl: the trust-region radius ``delta``
    :return: the step length (a tensor on the device of ``sfs``)
    """
    valid = th.isfinite(sfs) & (sfs > 0)
    safe = th.where(valid, sfs, th.ones_like(sfs))
    return th.where(valid, th.sqrt(2.0 * target_kl / safe), th.full_like(sfs, float("nan")))
