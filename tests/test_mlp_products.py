"""The hand-written Gauss-Newton and Fisher products of MLP heads: against explicit matrices, autograd and the host."""

import gymnasium as gym
import pytest
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

import sb3_npg.common.trust_region_critic as trust_region_critic
import sb3_npg.npg.npg as npg_module
from sb3_npg import NPG, RecurrentNPG
from sb3_npg.common.fisher import fisher_vector_product, gauss_newton_vector_product
from sb3_npg.common.mlp_products import (
    MlpJacobian,
    actor_fisher_vector_product,
    actor_jacobian,
    critic_jacobian,
    mlp_gauss_newton_vector_product,
)
from sb3_npg.common.parameters import flat_concat, unflatten_like
from sb3_npg.common.trust_region_critic import trust_region_value_step

N_STATES, OBS_DIM, OUT_DIM = 7, 3, 2


def _chain(activation: type[nn.Module], bias: bool) -> list[nn.Module]:
    th.manual_seed(0)
    layers = [nn.Linear(OBS_DIM, 5, bias=bias), activation(), nn.Linear(5, 4), activation(), nn.Linear(4, OUT_DIM, bias=bias)]
    return [layer.double() for layer in layers]


def _explicit_jacobian(layers: list[nn.Module], inputs: th.Tensor, params: list[th.Tensor]) -> th.Tensor:
    """``d outputs / d params`` as a matrix of shape ``(n * out, n_params)``, by autograd's functional Jacobian."""

    def outputs(flat: th.Tensor) -> th.Tensor:
        values = dict(zip(map(id, params), unflatten_like(flat, params), strict=True))
        x = inputs
        for layer in layers:
            if isinstance(layer, nn.Linear):
                bias = values[id(layer.bias)] if layer.bias is not None else None
                x = nn.functional.linear(x, values[id(layer.weight)], bias)
            else:
                x = layer(x)
        return x.reshape(-1)

    return th.autograd.functional.jacobian(outputs, flat_concat([p.detach() for p in params]))


@pytest.mark.parametrize("activation", [nn.Tanh, nn.ReLU, nn.ELU, nn.SiLU])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("weighted", [False, True], ids=["uniform", "weighted"])
def test_product_equals_the_explicit_gauss_newton_matrix(activation, bias, weighted):
    layers = _chain(activation, bias)
    inputs = th.randn(N_STATES, OBS_DIM, dtype=th.float64)
    jacobian = MlpJacobian(layers, inputs)
    extra = th.zeros(3, dtype=th.float64, requires_grad=True)  # an uncoupled block, as a state-independent log_std
    params = [extra, *reversed(jacobian.params)]  # any order of the flat vectors
    root = th.randn(OUT_DIM, OUT_DIM, dtype=th.float64)
    metric_matrix = root @ root.T + th.eye(OUT_DIM, dtype=th.float64)  # the same SPD metric M at every state
    weights = th.rand(N_STATES, dtype=th.float64) if weighted else th.ones(N_STATES, dtype=th.float64)

    product = mlp_gauss_newton_vector_product(
        params, jacobian, lambda u: u @ metric_matrix, 0.3, weights if weighted else None, [(extra, 2.0)]
    )

    net_params = params[1:]
    j = _explicit_jacobian(layers, inputs, net_params).view(N_STATES, OUT_DIM, -1)
    normalized = weights / weights.sum()
    gauss_newton = th.einsum("n,noi,op,npj->ij", normalized, j, metric_matrix, j)
    n_extra = extra.numel()
    expected = th.zeros(n_extra + gauss_newton.shape[0], n_extra + gauss_newton.shape[0], dtype=th.float64)
    expected[:n_extra, :n_extra] = 2.0 * th.eye(n_extra, dtype=th.float64)
    expected[n_extra:, n_extra:] = gauss_newton
    expected += 0.3 * th.eye(expected.shape[0], dtype=th.float64)
    for _ in range(3):
        vector = th.randn(expected.shape[0], dtype=th.float64)
        th.testing.assert_close(product(vector), expected @ vector, rtol=1e-10, atol=1e-12)
    # The forward pass it kept is the chain's own
    th.testing.assert_close(jacobian.outputs, _explicit_outputs(layers, inputs))


def _explicit_outputs(layers: list[nn.Module], inputs: th.Tensor) -> th.Tensor:
    with th.no_grad():
        return nn.Sequential(*layers)(inputs)


def test_bad_layers_and_parameters_are_refused():
    with pytest.raises(ValueError, match=r"nn\.Linear or elementwise activations, got Softmax"):
        MlpJacobian([nn.Linear(3, 2), nn.Softmax(dim=-1)], th.randn(4, 3))
    jacobian = MlpJacobian([nn.Linear(3, 2)], th.randn(4, 3))
    with pytest.raises(ValueError, match="params must be exactly"):
        mlp_gauss_newton_vector_product(jacobian.params[:1], jacobian, lambda u: u)
    with pytest.raises(ValueError, match=r"weights must have shape \(4,\)"):
        mlp_gauss_newton_vector_product(jacobian.params, jacobian, lambda u: u, weights=th.ones(3))


def _model(env_id: str, device: str = "cpu", **kwargs) -> NPG:
    model = NPG("MlpPolicy", gym.make(env_id), n_steps=64, seed=0, device=device, **kwargs)
    model.learn(64)  # fills the rollout buffer
    return model


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])  # diagonal Gaussian, categorical
@pytest.mark.parametrize("weighted", [False, True], ids=["uniform", "weighted"])
def test_policy_products_match_autograd(env_id, weighted):
    model = _model(env_id, policy_kwargs=dict(activation_fn=nn.ReLU, net_arch=dict(pi=[16, 8], vf=[8])))
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    weights = th.rand(64) if weighted else None

    actor = actor_fisher_vector_product(model.policy, rollout.observations, model.actor_params, 0.1, weights)
    distribution = model.policy.get_distribution(rollout.observations)
    autograd_actor = fisher_vector_product(model.actor_params, distribution, damping=0.1, weights=weights)
    jacobian = critic_jacobian(model.policy, rollout.observations, model.critic_params)
    assert actor is not None and jacobian is not None

    def metric(u: th.Tensor) -> th.Tensor:
        return u * 4.0

    critic = mlp_gauss_newton_vector_product(model.critic_params, jacobian, metric, 0.0, weights)
    values = model.policy.predict_values(rollout.observations).flatten()
    autograd_critic = gauss_newton_vector_product(model.critic_params, [values], [metric], 0.0, weights)
    for hand, auto, params in ((actor, autograd_actor, model.actor_params), (critic, autograd_critic, model.critic_params)):
        vector = th.randn(sum(p.numel() for p in params))
        th.testing.assert_close(hand(vector), auto(vector), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])  # diagonal Gaussian, categorical
def test_actor_distribution_and_gradient_match_sb3_and_autograd(env_id):
    model = _model(env_id, policy_kwargs=dict(activation_fn=nn.Tanh, net_arch=dict(pi=[16, 8], vf=[8])))
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    actor = actor_jacobian(model.policy, rollout.observations, model.actor_params)
    assert actor is not None
    actions = rollout.actions.long().flatten() if env_id == "CartPole-v1" else rollout.actions
    weights = th.rand(64, generator=th.Generator().manual_seed(0))

    def objective(distribution) -> th.Tensor:  # a surrogate-like loss that reaches every actor parameter
        return (weights * th.exp(distribution.log_prob(actions) - rollout.old_log_prob)).mean() + distribution.entropy().mean()

    sb3 = model.policy.get_distribution(rollout.observations)
    with th.no_grad():
        th.testing.assert_close(actor.distribution().log_prob(actions), sb3.log_prob(actions), rtol=0, atol=0)
    expected = flat_concat(th.autograd.grad(objective(sb3), model.actor_params))
    th.testing.assert_close(actor.gradient(objective), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sub_sampled", [False, True], ids=["whole", "sub-sample"])
def test_value_step_by_hand_needs_no_graph_and_matches_autograd(sub_sampled):
    model = _model("Pendulum-v1", policy_kwargs=dict(net_arch=dict(pi=[8], vf=[16, 8])))
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    curvature = rollout.observations[::4] if sub_sampled else None
    kwargs = dict(cg_max_steps=10, cg_damping=0.1)
    values = model.policy.predict_values(rollout.observations).flatten()
    if curvature is not None:
        kwargs["curvature_values"] = model.policy.predict_values(curvature).flatten()
    expected = trust_region_value_step(model.critic_params, values, rollout.returns, 0.01, **kwargs)

    hand = model._hand_written_critic(rollout, None if curvature is None else rollout._replace(observations=curvature))
    assert hand is not None and not hand.values.requires_grad
    th.testing.assert_close(hand.values, values.detach(), rtol=0, atol=0)
    kwargs.update(curvature_values=hand.curvature_values, gauss_newton=hand.gauss_newton, values_vjp=hand.values_vjp)
    step = trust_region_value_step(model.critic_params, hand.values, rollout.returns, 0.01, **kwargs)
    th.testing.assert_close(step.step, expected.step, rtol=1e-4, atol=1e-7)
    th.testing.assert_close(step.predicted_kl, expected.predicted_kl, rtol=1e-4, atol=1e-9)
    with pytest.raises(ValueError, match="values_vjp needs gauss_newton"):
        trust_region_value_step(model.critic_params, hand.values, rollout.returns, 0.01, values_vjp=hand.values_vjp)


class RowSoftmax(nn.Softmax):
    """An activation that mixes the elements of a row: its Jacobian is not diagonal."""

    def __init__(self) -> None:
        super().__init__(dim=-1)


class LinearExtractor(BaseFeaturesExtractor):
    """A features extractor with parameters (which belong to the actor): the products do not cover it."""

    def __init__(self, observation_space: gym.Space) -> None:
        super().__init__(observation_space, features_dim=4)
        self.linear = nn.Linear(observation_space.shape[0], 4)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(observations)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(dict(use_sde=True), id="gSDE"),
        pytest.param(dict(policy_kwargs=dict(activation_fn=RowSoftmax)), id="not-elementwise"),
        pytest.param(dict(policy_kwargs=dict(features_extractor_class=LinearExtractor)), id="extractor-with-parameters"),
    ],
)
def test_other_policies_are_left_to_autograd(kwargs):
    model = _model("Pendulum-v1", **kwargs)
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    assert actor_fisher_vector_product(model.policy, rollout.observations, model.actor_params) is None
    # The critic's own MLP is still covered unless it is not plain: a shared extractor belongs to the actor, and the
    # critic's fit holds it fixed
    plain_critic = "activation_fn" not in kwargs.get("policy_kwargs", {})
    assert (critic_jacobian(model.policy, rollout.observations, model.critic_params) is not None) == plain_critic


def _forbid(monkeypatch, module, name: str) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError(f"{name} called")

    monkeypatch.setattr(module, name, forbidden)


@pytest.mark.parametrize("factor", [1, 2], ids=["whole", "sub-samples"])
def test_npg_takes_the_hand_written_products_and_the_recurrent_npg_does_not(monkeypatch, factor):
    # Both autograd builders made to fail: NPG trains without them, on its own policy's MLPs
    with monkeypatch.context() as patch:
        _forbid(patch, npg_module, "fisher_vector_product")
        _forbid(patch, trust_region_critic, "gauss_newton_vector_product")
        model = NPG(
            "MlpPolicy",
            "Pendulum-v1",
            n_steps=64,
            critic_solver="trust_region",
            n_critic_updates=2,
            sub_sampling_factor=factor,
            critic_sub_sampling_factor=factor,
            seed=0,
        )
        model.learn(128)
        assert model.logger.name_to_value["train/update_skipped"] == 0.0
        recurrent = RecurrentNPG("MlpLstmPolicy", "Pendulum-v1", n_steps=64, seed=0)
        with pytest.raises(AssertionError, match="fisher_vector_product called"):
            recurrent.learn(64)


def test_trust_region_step_is_the_same_with_the_hand_written_products():
    model = _model("Pendulum-v1", critic_solver="trust_region")
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    observations, returns = rollout.observations, rollout.returns
    curvature = observations[::2]
    whole = critic_jacobian(model.policy, observations, model.critic_params)
    sample = critic_jacobian(model.policy, curvature, model.critic_params)
    assert whole is not None and sample is not None

    def factory(metric, damping, on_sub_sample):
        return mlp_gauss_newton_vector_product(model.critic_params, sample if on_sub_sample else whole, metric, damping)

    def step(gauss_newton):
        values = model.policy.predict_values(observations).flatten()
        curvature_values = model.policy.predict_values(curvature).flatten()
        return trust_region_value_step(
            model.critic_params, values, returns, 0.01, 10, 0.1, curvature_values=curvature_values, gauss_newton=gauss_newton
        )

    hand, auto = step(factory), step(None)
    assert bool(hand.finite)
    # float32 (SB3's policies cast observations to it): the same step up to rounding
    th.testing.assert_close(hand.step, auto.step, rtol=1e-4, atol=1e-6)
    th.testing.assert_close(hand.predicted_kl, auto.predicted_kl, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_hand_written_solves_never_read_a_tensor_on_the_host(solve_without_host_sync, solve_device, env_id):
    model = _model(env_id, device=solve_device)
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    actor = actor_fisher_vector_product(model.policy, rollout.observations, model.actor_params, 0.1)
    jacobian = critic_jacobian(model.policy, rollout.observations, model.critic_params)
    assert actor is not None and jacobian is not None
    critic = mlp_gauss_newton_vector_product(model.critic_params, jacobian, lambda u: u * 2.0, 0.1)
    for product, params in ((actor, model.actor_params), (critic, model.critic_params)):
        gradient = th.randn(sum(p.numel() for p in params), device=solve_device)
        result = solve_without_host_sync(product, gradient, max_iter=10)
        assert th.isfinite(result.solution).all()
        assert int(result.iterations) >= 1
