"""
The trust-region value fit of the GAE paper, as pure math on tensors (no algorithm in it).

Schulman et al. 2016 (https://arxiv.org/abs/1506.02438, the section on value-function estimation) read the
value function as a Gaussian ``N(V_phi(s), sigma^2)``, ``sigma^2`` being the old fit's mean squared error to
the targets, and fit it by

``min_phi mean_n (V_phi(s_n) - V_hat_n)^2``  subject to  ``mean_n (V_phi(s_n) - V_old(s_n))^2 / (2 sigma^2) <= epsilon``.

Linearised around ``phi_old``, the constraint's Hessian is ``H = J^T J / (n sigma^2)`` (``J = dV / d phi``): the
Gauss-Newton matrix, and the Fisher of that Gaussian, so :func:`~sb3_npg.common.fisher.gauss_newton_vector_product`
gives ``H v`` with the metric ``u -> u / sigma^2``. The step solves ``H s = g`` (``g`` the gradient of the squared
error) by :func:`~sb3_npg.common.conjugate_gradient.conjugate_gradient` and moves by ``-alpha s``, ``alpha`` putting
the quadratic model ``1/2 alpha^2 s^T H s`` at ``epsilon``, unless the Gauss-Newton minimiser of the squared error
along ``s`` lies inside the region (the step then stops there and the model is below ``epsilon``).

``H`` may be estimated on a sub-sample of the batch (``curvature_values``) for the solve, as TRPO estimates its
Fisher: each conjugate-gradient product then costs in proportion to the sub-sample, while the gradient,
``sigma^2`` and the quadratic model ``s^T H s`` that sizes the step use the whole batch (one product on it). A
value network usually has more parameters than a sub-sample has states, so the sub-sample's ``H`` is singular
and its solve grows along directions the sub-sample does not see; sized on the sub-sample, such a step moves
the values of the other states far beyond the radius. Damping (``cg_damping``) keeps the direction in check.

Everything stays on the tensors' device: no value is read by the host until the caller reads the result.
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch as th

from sb3_npg.common.batches import weighted_mean
from sb3_npg.common.conjugate_gradient import conjugate_gradient
from sb3_npg.common.fisher import FisherVectorProduct, MetricFn, gauss_newton_vector_product
from sb3_npg.common.parameters import flat_concat

#: ``(metric, damping, on_sub_sample) -> v -> (J^T M J / n + damping I) v``: the Gauss-Newton product over all the
#: parameters given, on the curvature sub-sample when ``on_sub_sample`` is True, else on the whole batch (a hand-written
#: product, :mod:`~sb3_npg.common.mlp_products`, in place of autograd's)
GaussNewtonFactory = Callable[[MetricFn, float, bool], FisherVectorProduct]


class ValueStep(NamedTuple):
    """
    One trust-region step of the value function; every field is a tensor on the values' device.

    :param step: the change of the parameters, flat, in the order of the parameters given (zeros where the values do
        not depend on a parameter)
    :param finite: 1 when the loss, the gradient and the step are all finite, else 0 (the caller then keeps the
        parameters)
    :param old_loss: the squared error before the step, ``sigma^2``
    :param predicted_kl: the quadratic model ``1/2 step^T H step`` of the constraint
    :param step_size: ``alpha``, the multiple of the conjugate-gradient solution taken
    :param cg_residual: the norm of the solve's residual
    :param cg_iterations: the iterations that updated the solution
    """

    step: th.Tensor
    finite: th.Tensor
    old_loss: th.Tensor
    predicted_kl: th.Tensor
    step_size: th.Tensor
    cg_residual: th.Tensor
    cg_iterations: th.Tensor


def trust_region_value_step(
    params: Sequence[th.Tensor],
    values: th.Tensor,
    targets: th.Tensor,
    max_kl: float,
    cg_max_steps: int = 10,
    cg_damping: float = 0.0,
    weights: th.Tensor | None = None,
    min_variance: float = 1e-8,
    curvature_values: th.Tensor | None = None,
    curvature_weights: th.Tensor | None = None,
    gauss_newton: GaussNewtonFactory | None = None,
    values_vjp: Callable[[th.Tensor], th.Tensor] | None = None,
) -> ValueStep:
    """
    The GAE paper's trust-region step of a value function ``V_phi`` on one batch.

    :param params: the value function's parameters ``phi``
    :param values: ``V_phi(s_n)``, shape ``(n,)``, with a graph to ``params``
    :param targets: the regression targets ``V_hat_n``, shape ``(n,)``
    :param max_kl: the radius ``epsilon`` of ``mean (V - V_old)^2 / (2 sigma^2) <= epsilon``
    :param cg_max_steps: conjugate-gradient iterations (Gauss-Newton products)
    :param cg_damping: damping ``lambda`` of the solve ``(H + lambda I) s = g``; the step is sized with the undamped ``H``
    :param weights: optional per-sample weights of every mean (the padding mask of a batch of sequences)
    :param min_variance: floor of ``sigma^2``, so that a perfect old fit does not divide by zero
    :param curvature_values: the values, with a graph to ``params``, at the states ``H`` is estimated on (a sub-sample
        of the batch); ``None``: ``values``, the whole batch
    :param curvature_weights: the per-sample weights of those states (``weights`` when ``curvature_values`` is ``None``)
    :param gauss_newton: builds the Gauss-Newton products (same weights, same states) instead of autograd; used only
        when the values depend on every parameter given
    :param values_vjp: ``u -> J^T u`` on the whole batch, flat over every parameter given (hand-written, with
        ``gauss_newton``): the gradient then needs no graph, and ``values`` and ``curvature_values`` may come without
        one; ``None``: autograd through ``values``
    :return: the step and its diagnostics (see :class:`ValueStep`)
    """
    if values_vjp is not None and gauss_newton is None:
        raise ValueError("values_vjp needs gauss_newton: autograd's products need the graph that values_vjp replaces")
    params = list(params)
    targets = targets.detach()
    if values_vjp is None:
        old_loss = weighted_mean((values - targets) ** 2, weights)
        grads = th.autograd.grad(old_loss, params, retain_graph=True, allow_unused=True)
        used = [p for p, grad in zip(params, grads, strict=True) if grad is not None]
        gradient = flat_concat([grad for grad in grads if grad is not None])
    else:  # autograd only from the loss to the values, then J^T by hand
        leaf = values.detach().requires_grad_(True)
        with th.enable_grad():
            old_loss = weighted_mean((leaf - targets) ** 2, weights)
            (cotangent,) = th.autograd.grad(old_loss, leaf)
        old_loss, used, gradient = old_loss.detach(), params, values_vjp(cotangent)

    variance = old_loss.detach().clamp(min=min_variance)
    inv_variance = 1.0 / variance
    metric: MetricFn = lambda u: u * inv_variance  # noqa: E731
    sub_sampled = curvature_values is not None

    def product(on_sub_sample: bool, damping: float) -> FisherVectorProduct:
        if gauss_newton is not None and len(used) == len(params):
            return gauss_newton(metric, damping, on_sub_sample)
        if on_sub_sample and curvature_values is not None:
            return gauss_newton_vector_product(used, [curvature_values], [metric], damping, curvature_weights)
        return gauss_newton_vector_product(used, [values], [metric], damping, weights)

    hvp = product(sub_sampled, cg_damping)
    solve = conjugate_gradient(hvp, gradient, max_iter=cg_max_steps)
    direction = solve.solution
    if not sub_sampled:  # s^T (H + lambda I) s comes with the solve, without another product
        shs = solve.quadratic_form - cg_damping * (direction @ direction)
    else:  # the length from the whole batch's curvature: the sub-sample's misses the directions it does not see
        shs = direction @ product(False, 0.0)(direction)

    # Largest step along -s inside the region, and the minimiser of the Gauss-Newton model of the loss along -s
    # (the loss's curvature is 2 J^T J / n = 2 sigma^2 H): the step is the shorter of the two
    valid = th.isfinite(shs) & (shs > 0)
    safe_shs = th.where(valid, shs, th.ones_like(shs))
    boundary = th.sqrt(2.0 * max_kl / safe_shs)
    minimiser = (gradient @ direction) / (2.0 * variance * safe_shs)
    step_size = th.where(valid, th.minimum(boundary, minimiser.clamp(min=0.0)), th.full_like(shs, float("nan")))
    used_step = -step_size * direction

    # Scatter back over every parameter given (a parameter the values ignore does not move)
    used_parts = iter(th.split(used_step, [p.numel() for p in used]))
    used_ids = {id(p) for p in used}
    step = flat_concat([next(used_parts) if id(p) in used_ids else th.zeros_like(p) for p in params])
    finite = th.isfinite(old_loss) & th.isfinite(gradient).all() & th.isfinite(step).all() & valid
    return ValueStep(
        step=step.detach(),
        finite=finite.detach(),
        old_loss=old_loss.detach(),
        predicted_kl=(0.5 * step_size**2 * shs).detach(),
        step_size=step_size.detach(),
        cg_residual=solve.residual_norm.detach(),
        cg_iterations=solve.iterations.detach(),
    )
