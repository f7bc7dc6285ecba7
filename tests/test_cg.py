"""Conjugate gradient against a direct solve, its guards, and the absence of host synchronisation."""

import itertools

import gymnasium as gym
import pytest
import torch as th

from sb3_npg import NPG
from sb3_npg.common.conjugate_gradient import conjugate_gradient
from sb3_npg.common.fisher import fisher_vector_product
from sb3_npg.common.parameters import flat_concat


def _spd(size: int, condition: float, seed: int) -> th.Tensor:
    generator = th.Generator().manual_seed(seed)
    q, _ = th.linalg.qr(th.randn(size, size, dtype=th.float64, generator=generator))
    eigenvalues = th.logspace(0, float(th.log10(th.tensor(condition))), size, dtype=th.float64)
    return q @ th.diag(eigenvalues) @ q.T


@pytest.mark.parametrize("size", [5, 40, 150])
@pytest.mark.parametrize("condition", [10.0, 1e4])
def test_matches_direct_solve(size, condition):
    matrix = _spd(size, condition, seed=size)
    b = th.randn(size, dtype=th.float64, generator=th.Generator().manual_seed(1))
    # CG is exact after `size` steps in exact arithmetic; rounding (loss of conjugacy) needs more when ill-conditioned
    result = conjugate_gradient(lambda v: matrix @ v, b, max_iter=10 * size, residual_tol=1e-24)
    expected = th.linalg.solve(matrix, b)
    assert th.allclose(result.solution, expected, rtol=1e-6, atol=1e-9)
    assert float(result.residual_norm) == pytest.approx(float((b - matrix @ result.solution).norm()), abs=1e-8)
    assert 1 <= int(result.iterations) <= 10 * size


def test_few_iterations_reduce_the_residual_monotonically_in_a_norm():
    matrix = _spd(60, 100.0, seed=0)
    b = th.randn(60, dtype=th.float64, generator=th.Generator().manual_seed(2))
    expected = th.linalg.solve(matrix, b)

    def a_norm_error(iterations: int) -> float:
        error = conjugate_gradient(lambda v: matrix @ v, b, max_iter=iterations).solution - expected
        return float(error @ matrix @ error)

    errors = [a_norm_error(k) for k in (1, 2, 5, 10, 20)]
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))


@pytest.mark.parametrize("iterations", [1, 3, 10, 40])
@pytest.mark.parametrize("condition", [10.0, 1e6])
def test_quadratic_form_is_that_of_the_solution(iterations, condition):
    matrix = _spd(40, condition, seed=3)
    b = th.randn(40, dtype=th.float64, generator=th.Generator().manual_seed(4))
    result = conjugate_gradient(lambda v: matrix @ v, b, max_iter=iterations)
    x = result.solution
    assert float(result.quadratic_form) == pytest.approx(float(x @ matrix @ x), rel=1e-10)


def test_quadratic_form_stays_accurate_in_float32_where_x_dot_b_drifts():
    # A singular, ill-conditioned Gauss-Newton matrix J^T J (more parameters than rows), as a critic's is
    generator = th.Generator().manual_seed(5)
    scales = th.logspace(0, -3, 60, dtype=th.float64)
    jacobian = th.randn(60, 200, dtype=th.float64, generator=generator) * scales[:, None]
    matrix = (jacobian.T @ jacobian).float()
    b = (jacobian.T @ th.randn(60, dtype=th.float64, generator=generator)).float()
    result = conjugate_gradient(lambda v: matrix @ v, b, max_iter=25)
    x = result.solution.double()
    exact = float(x @ matrix.double() @ x)
    assert float(result.quadratic_form) == pytest.approx(exact, rel=1e-4)
    # what the residual buys: the textbook x^T b, equal in exact arithmetic, is further off
    assert abs(float(result.solution @ b) - exact) > 10 * abs(float(result.quadratic_form) - exact)


def test_converged_iterate_is_frozen():
    matrix = th.diag(th.tensor([1.0, 2.0, 3.0], dtype=th.float64))
    b = th.tensor([1.0, 1.0, 1.0], dtype=th.float64)
    result = conjugate_gradient(lambda v: matrix @ v, b, max_iter=50)
    assert int(result.iterations) == 3  # three distinct eigenvalues: exact after three steps
    assert th.allclose(result.solution, th.tensor([1.0, 0.5, 1 / 3], dtype=th.float64))


def test_zero_right_hand_side_gives_zero():
    result = conjugate_gradient(lambda v: 2 * v, th.zeros(4, dtype=th.float64), max_iter=5)
    assert th.equal(result.solution, th.zeros(4, dtype=th.float64))
    assert int(result.iterations) == 0


def test_non_positive_curvature_stops_without_nan():
    matrix = th.diag(th.tensor([1.0, -1.0], dtype=th.float64))
    b = th.tensor([0.0, 1.0], dtype=th.float64)  # the first direction has negative curvature
    result = conjugate_gradient(lambda v: matrix @ v, b, max_iter=5)
    assert th.equal(result.solution, th.zeros(2, dtype=th.float64))
    assert int(result.iterations) == 0
    assert th.isfinite(result.residual_norm)


def test_non_finite_product_keeps_last_finite_iterate():
    calls = {"n": 0}
    matrix = _spd(10, 10.0, seed=4)

    def flaky(v):
        calls["n"] += 1
        return matrix @ v if calls["n"] <= 2 else th.full_like(v, float("nan"))

    b = th.ones(10, dtype=th.float64)
    result = conjugate_gradient(flaky, b, max_iter=6)
    two_steps = conjugate_gradient(lambda v: matrix @ v, b, max_iter=2)
    assert th.isfinite(result.solution).all()
    assert int(result.iterations) == 2
    assert th.allclose(result.solution, two_steps.solution)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="max_iter"):
        conjugate_gradient(lambda v: v, th.ones(3), max_iter=0)
    with pytest.raises(ValueError, match="1-d"):
        conjugate_gradient(lambda v: v, th.ones(3, 2), max_iter=2)


def _gradient_and_fvp(env_id: str, device: str):
    """The surrogate's gradient and the Fisher-vector product of one NPG rollout on ``device``."""
    model = NPG("MlpPolicy", gym.make(env_id), n_steps=64, seed=0, device=device)
    model.learn(64)  # fills the rollout buffer
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    distribution = model.policy.get_distribution(rollout.observations)
    actions = rollout.actions.long().flatten() if env_id == "CartPole-v1" else rollout.actions
    surrogate = (rollout.advantages * th.exp(distribution.log_prob(actions) - rollout.old_log_prob)).mean()
    gradient = flat_concat(th.autograd.grad(surrogate, model.actor_params, retain_graph=True))
    return gradient, fisher_vector_product(model.actor_params, distribution, damping=0.1)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_solve_never_reads_a_tensor_on_the_host(solve_without_host_sync, solve_device, env_id):
    """On CUDA any of these calls would stall the GPU: the solve, FVPs included, must make none."""
    gradient, fvp = _gradient_and_fvp(env_id, solve_device)

    result = solve_without_host_sync(fvp, gradient, max_iter=10)

    assert th.isfinite(result.solution).all()
    assert int(result.iterations) >= 1
    # The guard itself works: a Python `if` on a tensor inside the solve would have raised
    with pytest.raises(RuntimeError, match="host synchronisation"):
        solve_without_host_sync(lambda v: v if v.sum() > 0 else -v, gradient, max_iter=2)
