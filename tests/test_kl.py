"""KL estimators: exact, sample, their agreement and gradients."""

import pytest
import torch as th
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    MultiCategoricalDistribution,
    SquashedDiagGaussianDistribution,
    StateDependentNoiseDistribution,
)

from sb3_npg.common.kl import exact_kl, has_exact_kl, policy_kl, sample_kl

# --------------------------------------------------------------------------------------------------
# KL estimators
# --------------------------------------------------------------------------------------------------


def _gaussian(mean: th.Tensor, log_std: th.Tensor) -> Distribution:
    return DiagGaussianDistribution(mean.shape[1]).proba_distribution(mean, log_std)


def _squashed(mean: th.Tensor, log_std: th.Tensor) -> Distribution:
    return SquashedDiagGaussianDistribution(mean.shape[1]).proba_distribution(mean, log_std)


def _categorical(logits: th.Tensor) -> Distribution:
    return CategoricalDistribution(logits.shape[1]).proba_distribution(logits)


def _multi_categorical(logits: th.Tensor) -> Distribution:
    return MultiCategoricalDistribution([3, 2]).proba_distribution(logits)


def _bernoulli(logits: th.Tensor) -> Distribution:
    return BernoulliDistribution(logits.shape[1]).proba_distribution(logits)


def _pairs(n: int, generator: th.Generator, repeat: int = 1) -> dict[str, tuple[Distribution, Distribution]]:
    """Old and new distributions of every kind, on ``n`` states (each repeated ``repeat`` times), in float64."""

    def randn(*shape: int, scale: float = 1.0) -> th.Tensor:
        return scale * th.randn(*shape, generator=generator, dtype=th.float64)

    def rows(x: th.Tensor) -> th.Tensor:
        return x.repeat(repeat, 1)

    mean, log_std = randn(n, 2), randn(2, scale=0.3)
    new_mean, new_log_std = mean + randn(n, 2, scale=0.2), log_std + randn(2, scale=0.1)
    logits3, logits5, bits = randn(n, 3), randn(n, 5), randn(n, 4)
    new_logits3, new_logits5, new_bits = (
        logits3 + randn(n, 3, scale=0.3),
        logits5 + randn(n, 5, scale=0.3),
        bits + randn(n, 4, scale=0.3),
    )
    return {
        "gaussian": (_gaussian(rows(mean), log_std), _gaussian(rows(new_mean), new_log_std)),
        "squashed": (_squashed(rows(mean), log_std), _squashed(rows(new_mean), new_log_std)),
        "categorical": (_categorical(rows(logits3)), _categorical(rows(new_logits3))),
        "multi_categorical": (_multi_categorical(rows(logits5)), _multi_categorical(rows(new_logits5))),
        "bernoulli": (_bernoulli(rows(bits)), _bernoulli(rows(new_bits))),
    }


KINDS = ["gaussian", "squashed", "categorical", "multi_categorical", "bernoulli"]


@pytest.mark.parametrize("kind", KINDS)
def test_exact_kl_is_zero_for_identical_policies_and_positive_otherwise(kind):
    old, new = _pairs(16, th.Generator().manual_seed(0))[kind]
    assert th.allclose(exact_kl(old, old), th.zeros(16, dtype=th.float64), atol=1e-12)
    kl = exact_kl(old, new)
    assert kl.shape == (16,)
    assert (kl > 0).all()


@pytest.mark.parametrize("kind", ["gaussian", "categorical", "multi_categorical", "bernoulli"])
def test_sample_estimator_agrees_with_exact_kl(kind):
    """The mean of ``(r - 1) - log r`` over many actions from pi_old matches the closed form, state by state."""
    n_samples = 40_000
    old, new = _pairs(4, th.Generator().manual_seed(1), repeat=n_samples)[kind]
    th.manual_seed(2)
    actions = old.sample()  # one action per row: n_samples per state
    per_sample = sample_kl(old.log_prob(actions), new.log_prob(actions))
    estimates = per_sample.reshape(n_samples, 4).mean(dim=0)
    old, new = _pairs(4, th.Generator().manual_seed(1))[kind]
    exact = exact_kl(old, new)
    assert th.allclose(estimates, exact, rtol=0.1, atol=2e-3), (estimates, exact)


def test_sample_estimator_is_non_negative_and_zero_at_equal_probabilities():
    log_old = th.linspace(-5, 0, 50, dtype=th.float64)
    log_new = log_old + th.linspace(-3, 3, 50, dtype=th.float64)
    assert (sample_kl(log_old, log_new) >= 0).all()
    assert (sample_kl(log_old, log_old) == 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_policy_kl_auto_uses_the_closed_form(kind):
    old, new = _pairs(8, th.Generator().manual_seed(3))[kind]
    assert has_exact_kl(new)
    assert th.equal(policy_kl(old, new), exact_kl(old, new))
    assert th.equal(policy_kl(old, new, estimator="exact"), exact_kl(old, new))


def test_policy_kl_sample_estimator_needs_the_actions():
    old, new = _pairs(8, th.Generator().manual_seed(4))["gaussian"]
    with pytest.raises(ValueError, match="needs the actions"):
        policy_kl(old, new, estimator="sample")
    actions = old.sample()
    log_prob_old = old.log_prob(actions)
    expected = sample_kl(log_prob_old, new.log_prob(actions))
    assert th.equal(policy_kl(old, new, actions, log_prob_old, estimator="sample"), expected)


def test_policy_kl_rejects_unknown_estimator():
    old, new = _pairs(2, th.Generator().manual_seed(5))["categorical"]
    with pytest.raises(ValueError, match="estimator must be one of"):
        policy_kl(old, new, estimator="approx")


def test_gsde_distribution_has_exact_kl():
    dist = StateDependentNoiseDistribution(2)
    dist.proba_distribution_net(latent_dim=3, log_std_init=0.0)
    latent = th.randn(5, 3)
    old = dist.proba_distribution(th.zeros(5, 2), th.zeros(3, 2), latent)
    assert has_exact_kl(old)


@pytest.mark.parametrize("kind", ["gaussian", "categorical", "multi_categorical", "bernoulli"])
def test_exact_kl_gradient_matches_finite_differences(kind):
    """Gradient of the mean KL with respect to the new policy's parameters, against central differences (float64)."""
    generator = th.Generator().manual_seed(6)
    n = 6
    if kind == "gaussian":
        mean, log_std = th.randn(n, 2, generator=generator, dtype=th.float64), th.zeros(2, dtype=th.float64)
        old = _gaussian(mean, log_std)
        params = th.cat([mean.flatten(), log_std]) + 0.3 * th.randn(n * 2 + 2, generator=generator, dtype=th.float64)

        def build(p: th.Tensor) -> Distribution:
            return _gaussian(p[: n * 2].reshape(n, 2), p[n * 2 :])

    else:
        width = {"categorical": 3, "multi_categorical": 5, "bernoulli": 4}[kind]
        make = {"categorical": _categorical, "multi_categorical": _multi_categorical, "bernoulli": _bernoulli}[kind]
        logits = th.randn(n, width, generator=generator, dtype=th.float64)
        old = make(logits)
        params = logits.flatten() + 0.3 * th.randn(n * width, generator=generator, dtype=th.float64)

        def build(p: th.Tensor) -> Distribution:
            return make(p.reshape(n, width))

    def mean_kl(p: th.Tensor) -> th.Tensor:
        return policy_kl(old, build(p)).mean()

    params.requires_grad_(True)
    (gradient,) = th.autograd.grad(mean_kl(params), params)
    eps = 1e-6
    with th.no_grad():
        numeric = th.stack(
            [
                (mean_kl(params + eps * e) - mean_kl(params - eps * e)) / (2 * eps)
                for e in th.eye(len(params), dtype=th.float64)
            ]
        )
    assert th.allclose(gradient, numeric, rtol=1e-6, atol=1e-9)


class _LateRegisteredT(th.distributions.StudentT):
    """A torch distribution whose KL is registered only after ``has_exact_kl`` has seen it."""


def test_kl_pair_registered_after_first_use_is_found():
    distribution = DiagGaussianDistribution(2).proba_distribution(th.zeros(3, 2), th.zeros(2))
    distribution.distribution = _LateRegisteredT(5.0, th.zeros(3, 2), th.ones(3, 2))
    assert not has_exact_kl(distribution)

    @th.distributions.kl.register_kl(_LateRegisteredT, _LateRegisteredT)
    def _kl(p, q):  # a stand-in closed form: zero for identical parameters, positive otherwise
        return (p.loc - q.loc).pow(2) + (p.scale.log() - q.scale.log()).pow(2)

    assert has_exact_kl(distribution)
    other = DiagGaussianDistribution(2).proba_distribution(th.ones(3, 2), th.zeros(2))
    other.distribution = _LateRegisteredT(5.0, th.ones(3, 2), th.ones(3, 2))
    # "auto" now takes the registered closed form (the sample estimator would need actions)
    assert th.allclose(policy_kl(distribution, other), th.full((3,), 2.0))
