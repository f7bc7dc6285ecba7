"""NPG-specific behaviour: validation, parameter ownership, the trust region, line search, skipped updates."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import LinearSchedule

from sb3_npg import NPG
from sb3_npg.common.fisher import distribution_parameters
from sb3_npg.common.kl import has_exact_kl
from sb3_npg.common.schedules import as_schedule, kl_target


def _snapshot(params):
    return [p.detach().clone() for p in params]


def _unchanged(params, snapshot):
    return all(th.equal(p, s) for p, s in zip(params, snapshot, strict=True))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": lambda _: -1.0}, "learning_rate"),
        ({"n_steps": 0}, "n_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"gamma": 1.5}, "gamma"),
        ({"gae_lambda": -0.1}, "gae_lambda"),
        ({"cg_max_steps": 0}, "cg_max_steps"),
        ({"cg_max_steps": 2.5}, "cg_max_steps"),
        ({"cg_damping": -1e-3}, "cg_damping"),
        ({"damped_step_size": 1}, "damped_step_size"),
        ({"line_search_shrinking_factor": 1.0}, "line_search_shrinking_factor"),
        ({"line_search_max_iter": 0}, "line_search_max_iter"),
        ({"n_critic_updates": -1}, "n_critic_updates"),
        ({"target_kl": 0.0}, "target_kl"),
        ({"target_kl": float("nan")}, "target_kl"),
        ({"sub_sampling_factor": 0}, "sub_sampling_factor"),
        ({"sde_sample_freq": -2}, "sde_sample_freq"),
        ({"n_steps": 1, "normalize_advantage": True}, "n_steps \\* n_envs"),
    ],
)
def test_invalid_hyperparameters_raise_value_error(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NPG("MlpPolicy", "CartPole-v1", **kwargs)


@pytest.mark.parametrize(
    "n_steps, batch_size, message",
    [(64, 1000, r"batch_size=1000 is larger than the rollout buffer's size"), (100, 64, "does not divide")],
)
def test_batch_size_not_fitting_the_rollout_warns(n_steps, batch_size, message):
    with pytest.warns(UserWarning, match=message):
        NPG("MlpPolicy", "CartPole-v1", n_steps=n_steps, batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NPG("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32)


def test_target_kl_schedule_is_followed(record_logger):
    model = NPG("MlpPolicy", "CartPole-v1", n_steps=64, target_kl=lambda progress: 0.01 + 0.02 * progress, seed=0)
    log = record_logger(model)
    model.learn(256)
    targets = log.values["train/target_kl"]
    # SB3 updates the progress remaining after each rollout: 0.75, 0.5, 0.25, 0 at the four updates
    assert np.allclose(targets, [0.025, 0.02, 0.015, 0.01])
    predicted = log.values["train/predicted_kl"]
    assert np.allclose(predicted, targets, rtol=1e-4)


def test_kl_target_rule():
    # The schedule at the progress clipped to [0, 1], never below 1% of its value at progress 1
    decaying = LinearSchedule(start=0.02, end=0.0, end_fraction=1.0)  # the zoo's lin_0.02
    assert [kl_target(decaying, p) for p in (1.5, 1.0, 0.5, 0.25)] == pytest.approx([0.02, 0.02, 0.01, 0.005])
    assert [kl_target(decaying, p) for p in (0.005, 0.0, -0.01, -3.0)] == pytest.approx([2e-4] * 4)
    assert kl_target(lambda p: 0.02 * p, -0.5) == pytest.approx(2e-4)  # a schedule that would go negative
    assert kl_target(lambda p: 0.01 + 0.02 * p, -1.0) == pytest.approx(0.01)  # its value at 0 past the end
    assert kl_target(lambda p: float("nan") if p < 1 else 0.02, 0.5) == pytest.approx(2e-4)
    assert kl_target(as_schedule(0.01), -2.0) == 0.01


def test_decaying_target_kl_stays_positive_past_the_end_of_the_run(record_logger):
    # lin_0.02 over a run that ends past its budget, then continued past its new one (reset_num_timesteps=False):
    # every update's radius is 1% of the start value, and the step lands on it (no line search: the model's KL)
    schedule = LinearSchedule(start=0.02, end=0.0, end_fraction=1.0)
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=64, target_kl=schedule, n_critic_updates=1, seed=0)
    log = record_logger(model)
    model.learn(100)  # updates at progress 1 - 64/100 = 0.36 and 1 - 128/100 = -0.28
    model.learn(10, reset_num_timesteps=False)  # total 138, one rollout to 192: progress 1 - 192/138 < 0
    assert model._current_progress_remaining < 0
    targets = log.values["train/target_kl"]
    assert targets == pytest.approx([0.02 * 0.36, 2e-4, 2e-4])
    assert log.values["train/update_skipped"] == [0.0] * 3
    assert np.allclose(log.values["train/predicted_kl"], targets, rtol=1e-4)
    assert all(kl > 0 for kl in log.values["train/kl"])


def test_actor_parameters_found_from_the_graph_not_names():
    class Extractor(BaseFeaturesExtractor):
        def __init__(self, observation_space):
            super().__init__(observation_space, features_dim=8)
            self.body = th.nn.Sequential(th.nn.Linear(observation_space.shape[0], 8), th.nn.Tanh())

        def forward(self, observations):
            return self.body(observations)

    # Shared custom extractor: it feeds the actions, so it belongs to the natural-gradient step
    shared = NPG("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(features_extractor_class=Extractor, net_arch=[8]), seed=0)
    actor_ids = {id(p) for p in shared.actor_params}
    assert all(id(p) in actor_ids for p in shared.policy.features_extractor.parameters())
    assert id(shared.policy.log_std) in actor_ids
    assert all(id(p) not in actor_ids for p in shared.policy.value_net.parameters())
    optimized = {id(p) for group in shared.policy.optimizer.param_groups for p in group["params"]}
    assert optimized.isdisjoint(actor_ids)
    assert optimized | actor_ids == {id(p) for p in shared.policy.parameters()}

    # Separate extractors: the value extractor is the critic's
    separate = NPG("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(share_features_extractor=False), seed=0)
    actor_ids = {id(p) for p in separate.actor_params}
    assert all(id(p) not in actor_ids for p in separate.policy.vf_features_extractor.parameters())
    assert all(id(p) in actor_ids for p in separate.policy.mlp_extractor.policy_net.parameters())
    assert all(id(p) not in actor_ids for p in separate.policy.mlp_extractor.value_net.parameters())


def test_critic_fit_never_moves_the_actor():
    model = NPG("MlpPolicy", "CartPole-v1", n_steps=128, n_critic_updates=5, batch_size=32, seed=0)
    model.learn(128)  # one update, fills the buffer
    actor_before = _snapshot(model.actor_params)
    critic_before = _snapshot(model.critic_params)
    fit = model._fit_critic_adam()
    assert fit.minibatches == 5 * 4 and fit.dropped_minibatches == 0
    assert _unchanged(model.actor_params, actor_before)
    assert not _unchanged(model.critic_params, critic_before)


SYNC_METHODS = ("item", "__bool__", "__float__", "__int__", "tolist")


def test_critic_fit_syncs_once_per_minibatch(monkeypatch):
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=128, n_critic_updates=3, batch_size=32, seed=0)
    model.learn(128)
    counting = [True]
    syncs = [0]
    for name in SYNC_METHODS:
        original = getattr(th.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            syncs[0] += counting[0]
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(th.Tensor, name, counted)
    step = model.policy.optimizer.step

    def optimizer_step(*args, **kwargs):  # the optimizer's own bookkeeping is not the fit's
        counting[0] = False
        try:
            return step(*args, **kwargs)
        finally:
            counting[0] = True

    monkeypatch.setattr(model.policy.optimizer, "step", optimizer_step)
    fit = model._fit_critic_adam()
    monkeypatch.undo()
    assert fit.minibatches == 3 * 4
    assert syncs[0] <= fit.minibatches + 1  # one fused check per minibatch, one read of the losses


def test_critic_fit_drops_and_counts_non_finite_minibatches(monkeypatch):
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=128, n_critic_updates=2, batch_size=32, seed=0)
    predict_values = model.policy.predict_values
    calls = [0]

    def poisoned(observations):  # every third minibatch of the fit has a NaN value
        values = predict_values(observations)
        calls[0] += 1
        return values * float("nan") if calls[0] % 3 == 0 else values

    model.learn(128)  # fills the buffer; the poison starts with the next fit
    monkeypatch.setattr(model.policy, "predict_values", poisoned)
    critic_before = _snapshot(model.critic_params)
    model.train()
    values = model.logger.name_to_value
    assert values["train/critic_skipped_minibatches"] == 8 // 3
    assert np.isfinite(values["train/value_loss"])
    assert values["train/update_skipped"] == 0.0
    assert all(th.isfinite(p).all() for p in model.critic_params)
    assert not _unchanged(model.critic_params, critic_before)


def test_logged_keys_and_trust_region(record_logger):
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=256, target_kl=0.01, seed=0)
    log = record_logger(model)
    model.learn(1024)
    expected = {
        "kl",
        "predicted_kl",
        "step_size",
        "cg_residual",
        "cg_iterations",
        "surrogate_improvement",
        "policy_step_time",
        "value_loss",
        "explained_variance",
        "entropy",
        "std",
        "update_skipped",
        "learning_rate",
        "n_updates",
    }
    assert expected <= {key.removeprefix("train/") for key in log.values}
    assert all(len(log.values[f"train/{key}"]) == 4 for key in ("kl", "value_loss", "update_skipped"))
    assert log.values["train/update_skipped"] == [0.0] * 4
    assert np.allclose(log.values["train/predicted_kl"], 0.01, rtol=1e-4)
    kl = np.array(log.values["train/kl"])
    # The first step is taken where the quadratic model was fitted; later ones, after the critic has moved the
    # advantages, land in a wider band (over seeds 0-5, with autograd's products as with the hand-written ones,
    # updates 2-4 measured 0.0033-0.037)
    assert 0.005 < kl[0] < 0.02
    assert np.all((kl > 0.0025) & (kl < 0.04))
    assert all(1 <= it <= model.cg_max_steps for it in log.values["train/cg_iterations"])
    assert "train/line_search_success" not in log.values


def test_line_search_keeps_kl_within_target_or_rejects_the_step(record_logger):
    # A large radius makes the full step leave the region where the quadratic model holds
    model = NPG("MlpPolicy", "CartPole-v1", n_steps=256, target_kl=0.05, line_search=True, seed=0)
    log = record_logger(model)
    model.learn(256 * 4)
    success = log.values["train/line_search_success"]
    kl = np.array(log.values["train/kl"])
    improvement = np.array(log.values["train/surrogate_improvement"])
    assert len(success) == 4 and sum(success) >= 1
    assert np.all(kl <= 0.05 + 1e-9)
    assert np.all(improvement[np.array(success) == 1.0] > 0)


def test_failed_line_search_restores_the_actor(monkeypatch):
    model = NPG("MlpPolicy", "CartPole-v1", n_steps=64, line_search=True, line_search_max_iter=2, seed=0)
    model.learn(64)
    before = _snapshot(model.actor_params)
    # Every candidate step measures a KL far outside the trust region: all are rejected
    monkeypatch.setattr("sb3_npg.npg.npg.policy_kl", lambda *args, **kwargs: th.ones(64))
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    step = model._policy_step(rollout, target_kl=0.01)
    assert step.skipped is None and step.line_search_success == 0.0 and step.kl == 0.0
    assert _unchanged(model.actor_params, before)


@pytest.mark.parametrize("fault", ["reward", "gradient", "kl"])
def test_non_finite_update_is_skipped_and_training_goes_on(monkeypatch, fault, record_logger):
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=64, seed=0)
    log = record_logger(model)
    model.learn(64)
    params_before = _snapshot(model.policy.parameters())

    if fault == "reward":
        model.rollout_buffer.rewards[3, 0] = np.nan
        model.rollout_buffer.compute_returns_and_advantage(th.zeros(1), np.zeros(1, dtype=bool))
    elif fault == "gradient":
        original = NPG._surrogate

        def nan_surrogate(self, distribution, rollout, advantages):
            return original(self, distribution, rollout, advantages) * th.tensor(float("nan"))

        monkeypatch.setattr(NPG, "_surrogate", nan_surrogate)
    else:
        monkeypatch.setattr("sb3_npg.npg.npg.policy_kl", lambda *args, **kwargs: th.full((64,), float("nan")))

    with pytest.warns(UserWarning, match="skipped an update"):
        model.train()
    assert _unchanged(model.policy.parameters(), params_before)  # actor *and* critic kept
    assert log.values["train/update_skipped"][-1] == 1.0

    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        model.learn(128, reset_num_timesteps=False)
    assert log.values["train/update_skipped"][-1] == 0.0
    assert not _unchanged(model.policy.parameters(), params_before)


def test_fisher_subsampling_uses_a_subset_for_the_fisher_only(record_logger):
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=256, sub_sampling_factor=4, seed=0)
    log = record_logger(model)
    model.learn(512)
    assert log.values["train/update_skipped"] == [0.0, 0.0]
    assert np.allclose(log.values["train/predicted_kl"], 0.01, rtol=1e-4)


def test_custom_policy_class_is_accepted():
    class MyPolicy(ActorCriticPolicy):
        pass

    model = NPG(MyPolicy, "CartPole-v1", n_steps=64, policy_kwargs=dict(net_arch=dict(pi=[16], vf=[16])), seed=0)
    model.learn(128)
    assert len(model.actor_params) == 4  # pi layer (w, b) and action head (w, b)


@pytest.mark.skipif(not pytest.importorskip("gymnasium").envs.registry.get("HalfCheetah-v5"), reason="no HalfCheetah")
def test_halfcheetah_step_lands_near_target_kl(record_logger, outside_checkout):
    pytest.importorskip("mujoco", reason="MuJoCo is not installed (pip install 'sb3-npg[envs]')")
    model = NPG("MlpPolicy", gym.make("HalfCheetah-v5"), n_steps=2048, target_kl=0.01, seed=0)
    log = record_logger(model)
    model.learn(2048)
    kl = log.values["train/kl"][0]
    assert 0.5 * 0.01 <= kl <= 1.5 * 0.01


class StudentTDistribution(DiagGaussianDistribution):
    """Student-t actions: no closed-form metric in sb3_npg and no closed-form KL in PyTorch."""

    def proba_distribution(self, mean_actions, log_std):
        self.distribution = th.distributions.StudentT(5.0, mean_actions, th.ones_like(mean_actions) * log_std.exp())
        return self


class StudentTPolicy(ActorCriticPolicy):
    def _build(self, lr_schedule):
        self.action_dist = StudentTDistribution(int(np.prod(self.action_space.shape)))
        super()._build(lr_schedule)


def test_learns_with_a_distribution_without_closed_form_metric_or_kl(record_logger):
    model = NPG(StudentTPolicy, "Pendulum-v1", n_steps=256, target_kl=0.01, policy_kwargs=dict(net_arch=[16]), seed=0)
    rollout_distribution = model.policy.get_distribution(th.zeros(4, 3))
    assert distribution_parameters(rollout_distribution) is None and not has_exact_kl(rollout_distribution)
    log = record_logger(model)
    before = _snapshot(model.actor_params)
    model.learn(512)
    assert log.values["train/update_skipped"] == [0.0, 0.0]
    assert not _unchanged(model.actor_params, before)
    # the step is sized on the Monte Carlo Fisher of the actions taken; the sampled KL measures it
    assert np.allclose(log.values["train/predicted_kl"], 0.01, rtol=1e-3)
    assert all(0.5 * 0.01 < kl < 2 * 0.01 for kl in log.values["train/kl"])
