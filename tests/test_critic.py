"""The trust-region value fit (GAE paper): its math in float64 against brute force, then inside NPG and RecurrentNPG."""

import numpy as np
import pytest
import torch as th

from sb3_npg import NPG, RecurrentNPG
from sb3_npg.common import trust_region_critic
from sb3_npg.common.conjugate_gradient import ConjugateGradientResult
from sb3_npg.common.fisher import gauss_newton_vector_product
from sb3_npg.common.trust_region_critic import trust_region_value_step
from sb3_npg.npg import npg as npg_module
from tests.conftest import HOST_SYNC_METHODS, raise_host_sync

N_STATES, OBS_DIM, HIDDEN = 7, 3, 4


class TinyCritic:
    """A one-hidden-layer value network whose parameters are one flat float64 leaf tensor."""

    def __init__(self, seed: int = 0, n_states: int = N_STATES):
        generator = th.Generator().manual_seed(seed)
        self.shapes = [(OBS_DIM, HIDDEN), (HIDDEN,), (HIDDEN,), ()]
        n_params = sum(int(np.prod(s)) for s in self.shapes)
        self.theta = (0.5 * th.randn(n_params, generator=generator, dtype=th.float64)).requires_grad_()
        self.obs = th.randn(n_states, OBS_DIM, generator=generator, dtype=th.float64)
        self.targets = th.randn(n_states, generator=generator, dtype=th.float64)

    def values(self, theta: th.Tensor) -> th.Tensor:
        sizes = [int(np.prod(s)) for s in self.shapes]
        w1, b1, w2, b2 = (chunk.view(shape) for chunk, shape in zip(th.split(theta, sizes), self.shapes, strict=True))
        return th.tanh(self.obs @ w1 + b1) @ w2 + b2

    def jacobian(self) -> th.Tensor:
        return th.autograd.functional.jacobian(self.values, self.theta.detach())  # (n, p)

    def mse(self, theta: th.Tensor) -> th.Tensor:
        return ((self.values(theta) - self.targets) ** 2).mean()


def _matrix(product, size: int) -> th.Tensor:
    return th.stack([product(column) for column in th.eye(size, dtype=th.float64)], dim=1)


@pytest.mark.parametrize("weighted", [False, True])
def test_gauss_newton_product_equals_explicit_jtj_over_sigma_squared(weighted):
    critic = TinyCritic()
    sigma_sq = critic.mse(critic.theta).detach()
    weights = th.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], dtype=th.float64) if weighted else None
    values = critic.values(critic.theta)
    product = gauss_newton_vector_product([critic.theta], [values], [lambda u: u / sigma_sq], 0.0, weights)
    jac = critic.jacobian()
    if weighted:
        jac = jac[weights.bool()]
    explicit = jac.T @ jac / (jac.shape[0] * sigma_sq)
    assert th.allclose(_matrix(product, critic.theta.numel()), explicit, atol=1e-12, rtol=1e-10)


def _hessian_of_constraint(critic: TinyCritic, sigma_sq: th.Tensor) -> th.Tensor:
    """Brute force: the Hessian of mean (V - V_old)^2 / (2 sigma^2) at the old parameters."""
    old = critic.values(critic.theta.detach()).detach()
    return th.autograd.functional.hessian(
        lambda theta: ((critic.values(theta) - old) ** 2).mean() / (2 * sigma_sq), critic.theta.detach()
    )


def test_step_puts_the_quadratic_model_at_the_radius():
    critic = TinyCritic(seed=1)
    n_params = critic.theta.numel()
    max_kl = 1e-3
    values = critic.values(critic.theta)
    step = trust_region_value_step([critic.theta], values, critic.targets, max_kl, cg_max_steps=3 * n_params)
    sigma_sq = critic.mse(critic.theta).detach()
    hessian = _hessian_of_constraint(critic, sigma_sq)
    assert bool(step.finite)
    assert th.allclose(step.old_loss, sigma_sq)
    model = 0.5 * step.step @ hessian @ step.step
    assert th.allclose(model, th.tensor(max_kl, dtype=th.float64), rtol=1e-6)
    assert th.allclose(step.predicted_kl, model, rtol=1e-6)
    # It goes downhill: the loss falls, and the direction is the natural one (the Gauss-Newton step, scaled)
    assert critic.mse(critic.theta.detach() + step.step) < sigma_sq
    jac = critic.jacobian()
    residual = critic.values(critic.theta).detach() - critic.targets
    gauss_newton = -th.linalg.lstsq(jac, residual.unsqueeze(1)).solution.squeeze(1)
    cosine = (step.step @ gauss_newton) / (step.step.norm() * gauss_newton.norm())
    assert cosine > 1 - 1e-6


def _exact_solve(matrix_vector_product, b, max_iter=10, residual_tol=1e-10):
    """A stand-in for conjugate_gradient that solves A x = b exactly, from A built column by column."""
    matrix = _matrix(matrix_vector_product, b.numel())
    solution = th.linalg.solve(matrix, b)
    residual = b - matrix @ solution
    return ConjugateGradientResult(solution, residual.norm(), th.tensor(b.numel()), solution @ (b - residual))


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_step_stops_at_the_gauss_newton_minimiser_inside_the_region(solver, monkeypatch):
    critic = TinyCritic(seed=2, n_states=40)  # more states than parameters: a unique least-squares step
    jac = critic.jacobian()
    residual = critic.values(critic.theta).detach() - critic.targets
    gauss_newton = -th.linalg.lstsq(jac, residual.unsqueeze(1)).solution.squeeze(1)
    n_params = critic.theta.numel()
    if solver == "exact":  # the step's sizing alone, without CG's error
        monkeypatch.setattr(trust_region_critic, "conjugate_gradient", _exact_solve)
    values = critic.values(critic.theta)
    step = trust_region_value_step([critic.theta], values, critic.targets, 10.0, cg_max_steps=3 * n_params)
    # With CG, the step is as close as CG's stopping rule (squared residual below 1e-10) makes it: J^T J has a
    # condition number near 1e6 here, and the error the stopping rule leaves is about 5e-6 of the step
    tolerance = 1e-10 if solver == "exact" else 1e-4
    assert step.cg_residual**2 <= 1e-10
    assert (step.step - gauss_newton).norm() < tolerance * gauss_newton.norm()
    assert step.predicted_kl < 0.5  # the Gauss-Newton step's model is at most 1/2: well inside a radius of 10


@pytest.mark.parametrize("weighted", [False, True])
def test_step_on_a_sub_sampled_gauss_newton_matrix(weighted, monkeypatch):
    """Curvature on every 3rd state for the solve; gradient, sigma^2 and the step's quadratic model on all."""
    monkeypatch.setattr(trust_region_critic, "conjugate_gradient", _exact_solve)  # the products and sizing, not CG's error
    critic = TinyCritic(seed=3, n_states=150)  # 50 states in the sub-sample for 21 parameters
    n_params, max_kl = critic.theta.numel(), 1e-3
    weights = (th.arange(150) % 7 != 0).to(th.float64) if weighted else None
    values = critic.values(critic.theta)
    step = trust_region_value_step(
        [critic.theta],
        values,
        critic.targets,
        max_kl,
        cg_max_steps=3 * n_params,
        weights=weights,
        curvature_values=values[::3],
        curvature_weights=None if weights is None else weights[::3],
    )
    # Brute force: sigma^2 and the gradient on every state, the Gauss-Newton matrix on the sub-sample
    mask = th.ones(150, dtype=th.float64) if weights is None else weights
    residual = critic.values(critic.theta).detach() - critic.targets
    sigma_sq = (mask * residual**2).sum() / mask.sum()
    jac = critic.jacobian()
    gradient = 2 * jac.T @ (mask * residual) / mask.sum()
    sub_jac, sub_mask = jac[::3], mask[::3]
    sub_hessian = sub_jac.T @ (sub_mask[:, None] * sub_jac) / (sub_mask.sum() * sigma_sq)
    hessian = jac.T @ (mask[:, None] * jac) / (mask.sum() * sigma_sq)
    direction = th.linalg.solve(sub_hessian, gradient)  # the direction from the sub-sample ...
    expected = -th.sqrt(2 * max_kl / (direction @ hessian @ direction)) * direction  # ... its length from all
    assert bool(step.finite)
    assert th.allclose(step.old_loss, sigma_sq)
    assert th.allclose(step.step, expected, rtol=1e-8, atol=1e-12)
    model = 0.5 * step.step @ hessian @ step.step
    assert th.allclose(model, th.tensor(max_kl, dtype=th.float64), rtol=1e-6)
    assert th.allclose(step.predicted_kl, model, rtol=1e-6)
    # ... which is not the whole batch's step
    full = trust_region_value_step(
        [critic.theta], critic.values(critic.theta), critic.targets, max_kl, 3 * n_params, weights=weights
    )
    assert not th.allclose(step.step, full.step, rtol=1e-3)


def test_step_never_synchronises_with_the_host(monkeypatch):
    critic = TinyCritic(n_states=100)  # enough states that half of them determine the 21 parameters
    values = critic.values(critic.theta)
    with monkeypatch.context() as patch:
        for name in HOST_SYNC_METHODS:
            patch.setattr(th.Tensor, name, raise_host_sync)
        step = trust_region_value_step([critic.theta], values, critic.targets, 0.01, cg_max_steps=10)
        sub_sampled = trust_region_value_step(
            [critic.theta], values, critic.targets, 0.01, cg_max_steps=10, curvature_values=values[::2]
        )
    assert bool(step.finite) and bool(sub_sampled.finite)


def test_non_finite_values_give_a_step_marked_not_finite():
    critic = TinyCritic()
    values = critic.values(critic.theta) * th.tensor([1.0] * (N_STATES - 1) + [float("nan")], dtype=th.float64)
    step = trust_region_value_step([critic.theta], values, critic.targets, 0.01)
    assert not bool(step.finite)


def test_parameters_the_values_ignore_do_not_move():
    critic = TinyCritic()
    unused = th.zeros(3, dtype=th.float64, requires_grad=True)
    step = trust_region_value_step([critic.theta, unused], critic.values(critic.theta), critic.targets, 0.01)
    assert bool(step.finite)
    assert th.equal(step.step[-3:], th.zeros(3, dtype=th.float64))
    assert step.step[:-3].abs().sum() > 0


# --- Inside the algorithms ---

ALGOS = [
    pytest.param(NPG, "MlpPolicy", "Pendulum-v1", id="NPG"),
    pytest.param(RecurrentNPG, "MlpLstmPolicy", "Pendulum-v1", id="RecurrentNPG"),
]


def _snapshot(params):
    return [p.detach().clone() for p in params]


def _unchanged(params, snapshot):
    return all(th.equal(p, s) for p, s in zip(params, snapshot, strict=True))


@pytest.mark.parametrize("algo, policy, env_id", ALGOS)
@pytest.mark.parametrize("factor", [1, 4])
def test_trust_region_critic_fits_within_its_radius_and_never_moves_the_actor(algo, policy, env_id, factor):
    # With factor 4 the Gauss-Newton matrix of a critic of thousands of parameters comes from 32 states: the step
    # must still keep the whole rollout's measured constraint near its radius
    model = algo(
        policy,
        env_id,
        n_steps=128,
        critic_solver="trust_region",
        n_critic_updates=2,
        critic_target_kl=0.02,
        critic_sub_sampling_factor=factor,
        seed=0,
    )
    model.learn(128)
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    actor_before, critic_before = _snapshot(model.actor_params), _snapshot(model.critic_params)
    loss_before = model._critic_loss(rollout).item()
    model.policy.set_training_mode(True)
    fit = model._fit_critic(rollout)
    assert fit.minibatches == 2 and fit.dropped_minibatches == 0
    assert _unchanged(model.actor_params, actor_before)
    assert not _unchanged(model.critic_params, critic_before)
    assert fit.value_loss < loss_before
    assert fit.predicted_kl == pytest.approx(0.02, rel=1e-3)
    assert 0.2 * 0.02 < fit.kl < 5 * 0.02  # the measured constraint is near its quadratic model


@pytest.mark.parametrize(
    "algo, policy, env_id, by_hand",
    [
        pytest.param(NPG, "MlpPolicy", "Pendulum-v1", False, id="NPG-autograd"),
        pytest.param(NPG, "MlpPolicy", "Pendulum-v1", True, id="NPG-by-hand"),
        pytest.param(RecurrentNPG, "MlpLstmPolicy", "Pendulum-v1", False, id="RecurrentNPG"),
    ],
)
def test_non_finite_value_skips_the_critic_step_and_keeps_its_parameters(algo, policy, env_id, by_hand, monkeypatch):
    model = algo(policy, env_id, n_steps=128, critic_solver="trust_region", n_critic_updates=3, seed=0)
    model.learn(128)
    if by_hand:  # the hand-written critic's forward pass gives the values
        critic_jacobian = npg_module.critic_jacobian

        def non_finite_jacobian(*args):
            jacobian = critic_jacobian(*args)
            jacobian.outputs = jacobian.outputs * float("nan")
            return jacobian

        monkeypatch.setattr(npg_module, "critic_jacobian", non_finite_jacobian)
    else:  # a hook replaced on the instance also turns the hand-written path off
        batch_values = model._batch_values
        monkeypatch.setattr(model, "_batch_values", lambda batch: batch_values(batch) * float("nan"))
        assert not model._hand_written_products()
    critic_before = _snapshot(model.critic_params)
    model.train()
    logged = model.logger.name_to_value
    assert logged["train/critic_skipped_minibatches"] == 3
    assert logged["train/update_skipped"] == 0.0  # the policy step still happened
    assert np.isnan(logged["train/value_loss"])
    assert _unchanged(model.critic_params, critic_before)
    monkeypatch.undo()
    model.learn(256, reset_num_timesteps=False)  # training goes on
    assert model.logger.name_to_value["train/critic_skipped_minibatches"] == 0


@pytest.mark.parametrize("algo, policy, env_id", ALGOS)
def test_critic_sub_sampling_factor_puts_the_gauss_newton_matrix_on_the_sub_sample(algo, policy, env_id, monkeypatch):
    model = algo(
        policy, env_id, n_steps=128, critic_solver="trust_region", n_critic_updates=1, critic_sub_sampling_factor=4, seed=0
    )
    model.learn(128)
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    seen = []
    step_function = trust_region_critic.trust_region_value_step

    def recording_step(params, values, targets, max_kl, **kwargs):
        seen.append((values.shape[0], kwargs["curvature_values"].shape[0], kwargs["curvature_weights"]))
        return step_function(params, values, targets, max_kl, **kwargs)

    monkeypatch.setattr(npg_module, "trust_region_value_step", recording_step)
    model.policy.set_training_mode(True)
    expected = model._fisher_batch(rollout, 4)
    critic_before = _snapshot(model.critic_params)
    fit = model._fit_critic(rollout)
    assert fit.minibatches == 1 and not _unchanged(model.critic_params, critic_before)
    [(n_values, n_curvature, curvature_weights)] = seen
    assert n_values == model._batch_values(rollout).shape[0]
    assert n_curvature == model._batch_values(expected).shape[0] < n_values
    weights = model._batch_weights(expected)
    assert (curvature_weights is None) == (weights is None)
    if weights is not None:  # the recurrent batch: the sub-sample's own padding mask
        assert th.equal(curvature_weights, weights)


@pytest.mark.parametrize("factor", [0, 129])
def test_critic_sub_sampling_factor_outside_the_rollout_raises(factor):
    message = "critic_sub_sampling_factor must be" if factor else "critic_sub_sampling_factor"
    with pytest.raises(ValueError, match=message):
        NPG("MlpPolicy", "Pendulum-v1", n_steps=128, critic_solver="trust_region", critic_sub_sampling_factor=factor)


def test_trust_region_critic_logs_its_diagnostics_once_per_update():
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=128, critic_solver="trust_region", n_critic_updates=1, seed=0)
    model.learn(3 * 128)
    logged = model.logger.name_to_value
    for key in ("critic_kl", "critic_predicted_kl", "critic_step_size", "critic_cg_residual", "value_loss"):
        assert np.isfinite(logged[f"train/{key}"]), key


def test_adam_critic_logs_no_trust_region_keys():
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=128, n_critic_updates=1, seed=0)
    model.learn(128)
    assert "train/critic_predicted_kl" not in model.logger.name_to_value


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"critic_solver": "sgd"}, "critic_solver must be one of 'adam', 'trust_region', got 'sgd'"),
        ({"critic_target_kl": 0.0}, "critic_target_kl"),
        ({"critic_cg_damping": -1.0}, "critic_cg_damping"),
        ({"critic_cg_max_steps": 0}, "critic_cg_max_steps"),
    ],
)
def test_bad_critic_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NPG("MlpPolicy", "Pendulum-v1", **kwargs)


def test_saved_model_keeps_its_critic_solver(tmp_path):
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=128, critic_solver="trust_region", critic_target_kl=0.05, seed=0)
    model.save(tmp_path / "model")
    loaded = NPG.load(tmp_path / "model")
    assert loaded.critic_solver == "trust_region" and loaded.critic_target_kl == 0.05
