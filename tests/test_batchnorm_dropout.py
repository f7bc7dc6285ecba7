"""Policies with BatchNorm and Dropout: a side-effect-free construction, and SB3's train/eval-mode switching."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from sb3_npg import KLPPO, NPG
from sb3_npg.common.parameters import actor_parameters

ALGOS = [NPG, KLPPO]
SMALL = dict(n_steps=64, batch_size=32, seed=0)


class NormDropExtractor(BaseFeaturesExtractor):
    """Linear -> BatchNorm1d -> Tanh -> Dropout; records the mode of every forward pass in ``calls``."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 16) -> None:
        super().__init__(observation_space, features_dim)
        self.body = th.nn.Sequential(
            th.nn.Linear(observation_space.shape[0], features_dim),
            th.nn.BatchNorm1d(features_dim),
            th.nn.Tanh(),
            th.nn.Dropout(0.2),
        )
        self.phase = "construction"
        self.calls: list[tuple[str, bool]] = []

    def forward(self, observations: th.Tensor) -> th.Tensor:
        self.calls.append((self.phase, self.training))
        return self.body(observations)


POLICY_KWARGS = dict(features_extractor_class=NormDropExtractor, net_arch=[16])


def _algo_id(algo):
    return algo.__name__


def _fresh_buffers(model):
    """The buffers a BatchNorm1d holds before it has seen any data."""
    batch_norm = model.policy.features_extractor.body[1]
    return {
        "running_mean": th.zeros_like(batch_norm.running_mean),
        "running_var": th.ones_like(batch_norm.running_var),
        "num_batches_tracked": th.zeros_like(batch_norm.num_batches_tracked),
    }


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_construction_leaves_every_buffer_unchanged(algo):
    model = algo("MlpPolicy", "Pendulum-v1", policy_kwargs=POLICY_KWARGS, **SMALL)
    batch_norm = model.policy.features_extractor.body[1]
    for name, expected in _fresh_buffers(model).items():
        assert th.equal(getattr(batch_norm, name), expected), name
    # the features extractor (BatchNorm included) feeds the actions: it belongs to the actor
    actor_ids = {id(p) for p in actor_parameters(model.policy)}
    assert id(batch_norm.weight) in actor_ids and id(batch_norm.bias) in actor_ids


def test_probe_restores_modes_buffers_and_random_state():
    model = NPG("MlpPolicy", "Pendulum-v1", policy_kwargs=POLICY_KWARGS, **SMALL)
    policy = model.policy
    policy.set_training_mode(True)
    policy.features_extractor.body[3].train(False)  # a mixed state must come back as it was
    with th.no_grad():
        for buffer in policy.buffers():
            buffer.add_(3)
    modes = [module.training for module in policy.modules()]
    buffers = [buffer.clone() for buffer in policy.buffers()]
    space_state = policy.observation_space.np_random.bit_generator.state
    torch_state = th.get_rng_state()

    actor_parameters(policy)

    assert [module.training for module in policy.modules()] == modes
    assert all(th.equal(buffer, saved) for buffer, saved in zip(policy.buffers(), buffers, strict=True))
    assert policy.observation_space.np_random.bit_generator.state == space_state
    assert th.equal(th.get_rng_state(), torch_state)


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_train_and_predict_follow_sb3_mode_switching(algo):
    model = algo("MlpPolicy", "Pendulum-v1", policy_kwargs=POLICY_KWARGS, **SMALL)
    extractor = model.policy.features_extractor
    before = [p.detach().clone() for p in model.policy.parameters()]

    # Tag each forward pass with the phase it belongs to
    def tagged(method, phase):
        def run(*args, **kwargs):
            previous, extractor.phase = extractor.phase, phase
            try:
                return method(*args, **kwargs)
            finally:
                extractor.phase = previous

        return run

    model.collect_rollouts = tagged(model.collect_rollouts, "rollout")
    model.train = tagged(model.train, "train")
    if algo is NPG:
        model._fit_critic = tagged(model._fit_critic, "critic")
    else:
        model.minibatch_loss = tagged(model.minibatch_loss, "minibatch")
        model._rollout_kl = tagged(model._rollout_kl, "rollout_kl")
    model.learn(192)
    assert model.logger.name_to_value["train/update_skipped"] == 0.0
    assert not all(th.equal(p, q) for p, q in zip(model.policy.parameters(), before, strict=True))

    modes: dict[str, set[bool]] = {}
    for phase, training in extractor.calls:
        modes.setdefault(phase, set()).add(training)
    assert modes["rollout"] == {False}
    if algo is NPG:
        assert modes["train"] == {False}  # gradient, Fisher and line-search KL: one deterministic function
        assert modes["critic"] == {True}
    else:
        assert modes["minibatch"] == {True}
        assert modes["rollout_kl"] == {False}
    # BatchNorm learned running statistics in training mode only
    assert model.policy.features_extractor.body[1].num_batches_tracked > 0

    # predict is in eval mode: deterministic actions are reproducible and leave the statistics alone
    observations = np.stack([model.observation_space.sample() for _ in range(5)])
    batch_norm = model.policy.features_extractor.body[1]
    statistics = batch_norm.running_mean.clone()
    first, _ = model.predict(observations, deterministic=True)
    second, _ = model.predict(observations, deterministic=True)
    assert np.array_equal(first, second)
    assert th.equal(batch_norm.running_mean, statistics)
    single, _ = model.predict(observations[0], deterministic=True)  # one observation is fine in eval mode
    assert np.allclose(single, first[0], atol=1e-6)


def test_npg_step_with_dropout_measures_the_kl_at_the_target():
    model = NPG("MlpPolicy", "Pendulum-v1", policy_kwargs=POLICY_KWARGS, target_kl=0.01, n_steps=256, batch_size=64, seed=0)
    model.learn(256)
    values = model.logger.name_to_value
    assert values["train/update_skipped"] == 0.0
    assert values["train/predicted_kl"] == pytest.approx(0.01, rel=1e-3)
    # the measured KL is of the same deterministic function: close to its quadratic model
    assert 0.5 * 0.01 < values["train/kl"] < 1.5 * 0.01
