"""Fisher-vector products against explicitly formed Fisher matrices, in float64 on tiny networks."""

import itertools

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    MultiCategoricalDistribution,
    StateDependentNoiseDistribution,
)

from sb3_npg.common.batches import subsample_observations
from sb3_npg.common.fisher import (
    distribution_parameters,
    fisher_vector_product,
    gauss_newton_vector_product,
    kl_hessian_vector_product,
    natural_step_size,
)
from sb3_npg.common.kl import exact_kl, has_exact_kl, policy_kl
from sb3_npg.common.parameters import flat_concat, unflatten_like

N_STATES, OBS_DIM, HIDDEN = 6, 3, 4


class LaplaceDistribution(DiagGaussianDistribution):
    """A distribution without a closed-form metric in sb3_npg: exercises the Hessian-of-KL fallback."""

    def proba_distribution(self, mean_actions, log_std):
        self.distribution = th.distributions.Laplace(mean_actions, th.ones_like(mean_actions) * log_std.exp())
        return self


def _make_gsde(action_dim):
    # learn_features=True: the std's dependence on the features is then part of the graph, so autograd
    # sees the same function of theta as the measured KL does (with False, SB3 deliberately detaches it)
    dist = StateDependentNoiseDistribution(action_dim, full_std=True, learn_features=True)
    dist.latent_sde_dim = HIDDEN
    return dist


# name -> (number of network outputs, number of extra parameters, builder(outputs, extra) -> Distribution)
DISTRIBUTIONS = {
    "diag_gaussian": (2, 2, lambda out, extra, h: DiagGaussianDistribution(2).proba_distribution(out, extra)),
    "gsde": (2, HIDDEN * 2, lambda out, extra, h: _make_gsde(2).proba_distribution(out, extra.view(HIDDEN, 2), h)),
    "categorical": (3, 0, lambda out, extra, h: CategoricalDistribution(3).proba_distribution(out)),
    "multi_categorical": (5, 0, lambda out, extra, h: MultiCategoricalDistribution([3, 2]).proba_distribution(out)),
    "bernoulli": (3, 0, lambda out, extra, h: BernoulliDistribution(3).proba_distribution(out)),
    "laplace_fallback": (2, 2, lambda out, extra, h: LaplaceDistribution(2).proba_distribution(out, extra)),
}


class TinyPolicy:
    """A one-hidden-layer network whose parameters are one flat float64 leaf tensor."""

    def __init__(self, name: str, seed: int = 0):
        generator = th.Generator().manual_seed(seed)
        self.n_out, self.n_extra, self.builder = DISTRIBUTIONS[name]
        self.shapes = [(OBS_DIM, HIDDEN), (HIDDEN,), (HIDDEN, self.n_out), (self.n_out,), (self.n_extra,)]
        n_params = sum(int(np.prod(s)) for s in self.shapes)
        self.theta = (0.5 * th.randn(n_params, generator=generator, dtype=th.float64)).requires_grad_()
        self.obs = th.randn(N_STATES, OBS_DIM, generator=generator, dtype=th.float64)

    def distribution(self, theta: th.Tensor) -> Distribution:
        w1, b1, w2, b2, extra = (
            chunk.view(shape)
            for chunk, shape in zip(th.split(theta, [int(np.prod(s)) for s in self.shapes]), self.shapes, strict=True)
        )
        hidden = th.tanh(self.obs @ w1 + b1)
        return self.builder(hidden @ w2 + b2, 0.3 * extra - 0.2, hidden)

    def mean_kl(self, theta: th.Tensor) -> th.Tensor:
        with th.no_grad():
            old = self.distribution(self.theta.detach())
        return exact_kl(old, self.distribution(theta)).mean()

    def fvp(self, damping: float = 0.0):
        distribution = self.distribution(self.theta)
        return fisher_vector_product([self.theta], distribution, lambda: self.mean_kl(self.theta), damping)


def _matrix(product, size: int) -> th.Tensor:
    return th.stack([product(column) for column in th.eye(size, dtype=th.float64)], dim=1)


def _kl_hessian(policy: TinyPolicy) -> th.Tensor:
    return th.autograd.functional.hessian(policy.mean_kl, policy.theta.detach())


def _score_outer_product(policy: TinyPolicy, name: str) -> th.Tensor:
    """E_s E_{a ~ pi}[grad log pi grad log pi^T], enumerating every action exactly (discrete spaces)."""
    action_sets = {
        "categorical": [th.tensor(a) for a in range(3)],
        "multi_categorical": [th.tensor(a) for a in itertools.product(range(3), range(2))],
        "bernoulli": [th.tensor(a, dtype=th.float64) for a in itertools.product((0.0, 1.0), repeat=3)],
    }[name]
    size = policy.theta.numel()
    fisher = th.zeros(size, size, dtype=th.float64)
    for state in range(N_STATES):
        for action in action_sets:
            log_prob = policy.distribution(policy.theta).log_prob(action.expand(N_STATES, *action.shape))[state]
            (score,) = th.autograd.grad(log_prob, policy.theta)
            fisher += log_prob.exp().detach() * th.outer(score, score)
    return fisher / N_STATES


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_fvp_equals_hessian_of_mean_kl(name):
    policy = TinyPolicy(name)
    fisher = _matrix(policy.fvp(), policy.theta.numel())
    hessian = _kl_hessian(policy)
    assert th.allclose(fisher, fisher.T, atol=1e-10)
    assert th.allclose(fisher, hessian, atol=1e-9, rtol=1e-7)
    assert th.linalg.eigvalsh(fisher).min() > -1e-10


@pytest.mark.parametrize("name", ["categorical", "multi_categorical", "bernoulli"])
def test_fvp_equals_expected_score_outer_product(name):
    policy = TinyPolicy(name)
    fisher = _matrix(policy.fvp(), policy.theta.numel())
    assert th.allclose(fisher, _score_outer_product(policy, name), atol=1e-9, rtol=1e-7)


def test_gaussian_fvp_matches_monte_carlo_score_outer_product():
    policy = TinyPolicy("diag_gaussian", seed=3)
    fisher = _matrix(policy.fvp(), policy.theta.numel())
    th.manual_seed(0)
    n_samples = 20_000
    with th.no_grad():
        actions = policy.distribution(policy.theta).distribution.sample((n_samples,))  # (n_samples, N_STATES, 2)

    def joint_log_prob(theta, action):  # sum over states of log pi(a_s | s): per-state scores are independent
        return policy.distribution(theta).distribution.log_prob(action).sum()

    scores = th.func.vmap(th.func.grad(joint_log_prob), in_dims=(None, 0))(policy.theta.detach(), actions)
    estimate = (scores.T @ scores) / (n_samples * N_STATES)
    assert th.allclose(estimate, fisher, atol=0.05 * fisher.abs().max())


@pytest.mark.parametrize("name", ["diag_gaussian", "categorical"])
def test_damping_adds_identity(name):
    policy = TinyPolicy(name)
    size = policy.theta.numel()
    undamped = _matrix(policy.fvp(0.0), size)
    damped = _matrix(policy.fvp(0.25), size)
    assert th.allclose(damped - undamped, 0.25 * th.eye(size, dtype=th.float64), atol=1e-12)


def test_known_distributions_use_gauss_newton_and_others_fall_back():
    for name in DISTRIBUTIONS:
        policy = TinyPolicy(name)
        parameters = distribution_parameters(policy.distribution(policy.theta))
        assert (parameters is None) == (name == "laplace_fallback")
    laplace = TinyPolicy("laplace_fallback")
    with pytest.raises(ValueError, match="mean_kl"):
        fisher_vector_product([laplace.theta], laplace.distribution(laplace.theta))


def test_kl_hessian_vector_product_matches_autograd_hessian():
    policy = TinyPolicy("diag_gaussian")
    product = kl_hessian_vector_product([policy.theta], policy.mean_kl(policy.theta), damping=0.0)
    assert th.allclose(_matrix(product, policy.theta.numel()), _kl_hessian(policy), atol=1e-10)


def test_gauss_newton_with_several_parameter_tensors():
    """The product works on a list of parameter tensors, flattened in order."""
    generator = th.Generator().manual_seed(1)
    weight = th.randn(3, 4, dtype=th.float64, generator=generator, requires_grad=True)
    bias = th.randn(4, dtype=th.float64, generator=generator, requires_grad=True)
    obs = th.randn(5, 3, dtype=th.float64, generator=generator)

    def logits_of(w, b):
        return obs @ w + b

    parameters = distribution_parameters(CategoricalDistribution(4).proba_distribution(logits_of(weight, bias)))
    assert parameters is not None
    product = gauss_newton_vector_product([weight, bias], parameters.outputs, parameters.metrics)

    def mean_kl(flat):
        w, b = unflatten_like(flat, [weight, bias])
        new = CategoricalDistribution(4).proba_distribution(logits_of(w, b))
        old = CategoricalDistribution(4).proba_distribution(logits_of(weight, bias).detach())
        return exact_kl(old, new).mean()

    hessian = th.autograd.functional.hessian(mean_kl, flat_concat([weight, bias]).detach())
    assert th.allclose(_matrix(product, 16), hessian, atol=1e-10)


@pytest.mark.parametrize("name", ["diag_gaussian", "gsde", "categorical"])
@pytest.mark.parametrize("target_kl", [1e-6, 1e-5])
def test_step_rule_puts_quadratic_kl_at_target_and_measured_kl_close(name, target_kl):
    policy = TinyPolicy(name, seed=2)
    size = policy.theta.numel()
    fisher = _matrix(policy.fvp(), size)
    direction = fisher @ th.randn(size, dtype=th.float64)  # a direction the Fisher sees (it is rank-deficient)
    step = natural_step_size(direction @ fisher @ direction, target_kl) * direction
    assert float(0.5 * step @ fisher @ step) == pytest.approx(target_kl, rel=1e-10)
    measured = float(policy.mean_kl(policy.theta.detach() + step))
    assert measured == pytest.approx(target_kl, rel=0.1)


def test_step_rule_rejects_degenerate_curvature():
    for sfs in (0.0, -1.0, float("nan"), float("inf")):
        assert th.isnan(natural_step_size(th.tensor(sfs), 0.01))
    assert float(natural_step_size(th.tensor(8.0), 0.01)) == pytest.approx(0.05)


def test_subsample_observations_tensor_and_dict():
    obs = th.arange(10).view(10, 1)
    assert subsample_observations(obs, 1) is obs
    assert subsample_observations(obs, 3).flatten().tolist() == [0, 3, 6, 9]
    sub = subsample_observations({"a": obs, "b": obs * 2}, 4)
    assert sub["a"].flatten().tolist() == [0, 4, 8]
    assert sub["b"].flatten().tolist() == [0, 8, 16]


class StudentTDistribution(DiagGaussianDistribution):
    """No closed-form metric in sb3_npg and no closed-form KL in PyTorch: the fallback uses the sample estimator."""

    def proba_distribution(self, mean_actions, log_std):
        self.distribution = th.distributions.StudentT(5.0, mean_actions, th.ones_like(mean_actions) * log_std.exp())
        return self


def test_fallback_through_the_sample_estimator_is_the_monte_carlo_fisher_of_the_actions():
    """With no closed-form KL, the fallback's product is the mean score outer product of the sampled actions."""
    policy = TinyPolicy("diag_gaussian")
    policy.builder = lambda out, extra, h: StudentTDistribution(2).proba_distribution(out, extra)
    distribution = policy.distribution(policy.theta)
    assert not has_exact_kl(distribution) and distribution_parameters(distribution) is None
    actions = distribution.sample().detach()
    old_log_prob = distribution.log_prob(actions).detach()

    def mean_kl():
        with th.no_grad():
            old = policy.distribution(policy.theta.detach())
        return policy_kl(old, distribution, actions, old_log_prob).mean()

    def monte_carlo_fisher(sampled):
        scores = th.stack([th.autograd.grad(lp, policy.theta, retain_graph=True)[0] for lp in distribution.log_prob(sampled)])
        return scores.T @ scores / N_STATES

    product = _matrix(fisher_vector_product([policy.theta], distribution, mean_kl), policy.theta.numel())
    assert th.allclose(product, monte_carlo_fisher(actions), atol=1e-10, rtol=1e-8)
    # ... which is not the Fisher: another draw of the actions gives another matrix
    assert not th.allclose(monte_carlo_fisher(actions), monte_carlo_fisher(distribution.sample().detach()), atol=1e-6)
