"""Conjugate gradient that stays on the tensors' device: no host synchronisation inside the loop."""

from collections.abc import Callable
from typing import NamedTuple

import torch as th


class ConjugateGradientResult(NamedTuple):
    """
    Outcome of :func:`conjugate_gradient`; every field is a tensor on the solver's device.

    :param solution: the approximate solution ``x`` of ``A x = b``
    :param residual_norm: the norm of the (recursively updated) residual ``b - A x``
    :param iterations: the number of iterations that actually updated ``x`` (a 0-d integer tensor)
    :param quadratic_form: ``x^T A x``, read off the solve as ``x^T (b - r)`` with its residual ``r``, without another
        product: what a trust-region step's length needs (it agrees with ``x @ A(x)`` to rounding, also when ``A`` is
        ill-conditioned; ``x^T b`` alone, equal in exact arithmetic, drifts by up to a few percent in float32 there)
    """

    solution: th.Tensor
    residual_norm: th.Tensor
    iterations: th.Tensor
    quadratic_form: th.Tensor


def conjugate_gradient(
    matrix_vector_product: Callable[[th.Tensor], th.Tensor],
    b: th.Tensor,
    max_iter: int = 10,
    residual_tol: float = 1e-10,
) -> ConjugateGradientResult:
    """
    Solve ``A x = b`` for a symmetric positive-definite ``A`` given only through ``v -> A v``.

    The loop runs exactly ``max_iter`` times and never asks the host for a tensor value, so on CUDA
    it queues all its kernels without waiting. An iterate stops changing (is frozen with
    ``torch.where``) once the squared residual drops to ``residual_tol``, or when a step would meet
    non-positive curvature (``p^T A p <= 0``) or a non-finite value. The start is ``x = 0``.

    :param matrix_vector_product: function computing ``A v`` for a 1-d tensor ``v``
    :param b: right-hand side, a 1-d tensor
    :param max_iter: number of iterations (matrix-vector products)
    :param residual_tol: the solve is converged once ``||b - A x||^2 <= residual_tol``
    :return: the solution, the residual norm, the number of effective iterations and ``x^T A x``
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if b.dim() != 1:
        raise ValueError(f"b must be a 1-d tensor, got shape {tuple(b.shape)}")

    x = th.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = residual @ residual
    zero = th.zeros((), dtype=b.dtype, device=b.device)
    one = th.ones((), dtype=b.dtype, device=b.device)
    active = th.isfinite(residual_sq) & (residual_sq > residual_tol)
    iterations = th.zeros((), dtype=th.long, device=b.device)

    for _ in range(max_iter):
        a_direction = matrix_vector_product(direction)
        curvature = direction @ a_direction
        step_ok = active & th.isfinite(curvature) & (curvature > 0)
        alpha = th.where(step_ok, residual_sq / th.where(step_ok, curvature, one), zero)
        new_x = x + alpha * direction
        new_residual = residual - alpha * a_direction
        new_residual_sq = new_residual @ new_residual
        step_ok = step_ok & th.isfinite(new_residual_sq) & th.isfinite(new_x).all()

        beta = th.where(step_ok, new_residual_sq / th.where(step_ok, residual_sq, one), zero)
        x = th.where(step_ok, new_x, x)
        direction = th.where(step_ok, new_residual + beta * direction, direction)
        residual = th.where(step_ok, new_residual, residual)
        residual_sq = th.where(step_ok, new_residual_sq, residual_sq)
        iterations = iterations + step_ok.long()
        active = step_ok & (new_residual_sq > residual_tol)

    return ConjugateGradientResult(x, residual_sq.sqrt(), iterations, x @ (b - residual))
