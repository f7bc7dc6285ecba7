"""
KLPPO: loss and gradient, validation, skipped updates, the controllers, persistence, logging, schedules and policies.

Its action and observation spaces and gSDE are tested with NPG's, in ``test_run.py``.
"""

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import RolloutBufferSamples
from stable_baselines3.common.utils import LinearSchedule

from sb3_npg import KLPPO
from sb3_npg.klppo.controllers import adaptive_kl_coef, dual_kl_coef

SMALL_NET = dict(net_arch=[16])
FAST = dict(n_steps=32, batch_size=16, n_epochs=2, policy_kwargs=SMALL_NET)


# --------------------------------------------------------------------------------------------------
# The loss and its gradient
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_loss_and_update_equal_ppo_without_penalty(env_id, record_logger):
    """kl_coef=0, fixed beta and clip_range=0.2: SB3 PPO's loss on the same batch, and PPO's parameters after the update."""
    common = dict(n_steps=64, batch_size=128, n_epochs=3, learning_rate=1e-3, seed=0, policy_kwargs=SMALL_NET)
    ppo = PPO("MlpPolicy", make_vec_env(env_id, n_envs=2, seed=0), clip_range=0.2, **common)
    klppo = KLPPO(
        "MlpPolicy",
        make_vec_env(env_id, n_envs=2, seed=0),
        clip_range=0.2,
        kl_coef=0.0,
        kl_adaptation="fixed",
        kl_early_stop=None,
        **common,
    )
    klppo.policy.load_state_dict(ppo.policy.state_dict())

    ppo_log = record_logger(ppo)
    ppo.learn(128)  # one rollout (one minibatch of 128), then three epochs
    klppo.rollout_buffer = ppo.rollout_buffer
    klppo_log = record_logger(klppo)
    klppo.train()

    # The same loss on the same batch (train/loss is the loss of the last minibatch, as in PPO)
    assert klppo_log.series("train/loss")[0] == pytest.approx(ppo_log.series("train/loss")[0], rel=1e-5)
    for key in ("policy_gradient_loss", "value_loss", "entropy_loss", "clip_fraction"):
        assert klppo_log.series(f"train/{key}")[0] == pytest.approx(ppo_log.series(f"train/{key}")[0], rel=1e-4, abs=1e-6)
    # ... and the same three Adam steps
    for (name, ours), theirs in zip(klppo.policy.state_dict().items(), ppo.policy.state_dict().values(), strict=True):
        assert th.allclose(ours, theirs, rtol=1e-4, atol=1e-6), name


def test_minibatch_loss_is_the_sum_of_its_terms():
    model = KLPPO("MlpPolicy", "Pendulum-v1", kl_coef=2.5, kl_adaptation="fixed", ent_coef=0.01, vf_coef=0.7, seed=0, **FAST)
    model.learn(32)
    batch = next(model.rollout_buffer.get(None))
    with th.no_grad():
        for param in model.policy.parameters():
            param.add_(0.05 * th.randn_like(param))
    terms = model.minibatch_loss(batch, clip_range=None, clip_range_vf=None)
    assert terms.kl.item() > 0
    assert terms.kl_penalty.item() == pytest.approx(2.5 * terms.kl.item(), rel=1e-6)
    expected = terms.policy_gradient_loss + terms.kl_penalty + 0.01 * terms.entropy_loss + 0.7 * terms.value_loss
    assert terms.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms.clip_fraction.item() == 0.0


class _FlattenToPolicyDtype(BaseFeaturesExtractor):
    """Flatten the observation into features of the policy's dtype, so that a ``.double()`` policy runs in float64."""

    def __init__(self, observation_space: gym.spaces.Box):
        super().__init__(observation_space, get_flattened_obs_dim(observation_space))
        self.register_buffer("dtype_probe", th.zeros(()))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return observations.to(self.dtype_probe.dtype).flatten(start_dim=1)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_penalty_gradient_matches_finite_differences(env_id):
    """Gradient of ``beta * KL(pi_old || pi_theta)`` along random directions, against central differences in float64."""
    policy_kwargs = dict(net_arch=[8], features_extractor_class=_FlattenToPolicyDtype)
    model = KLPPO("MlpPolicy", env_id, n_steps=32, batch_size=32, n_epochs=1, kl_coef=2.5, policy_kwargs=policy_kwargs, seed=0)
    model.policy.double()
    model.learn(32)  # fills the rollout buffer (and checks that a float64 policy trains)
    batch = RolloutBufferSamples(*(tensor.double() for tensor in next(model.rollout_buffer.get(None))))

    model._snapshot_policy()  # pi_old := the current policy, then move away from it so that the gradient is not zero
    generator = th.Generator().manual_seed(0)
    params = list(model.policy.parameters())
    with th.no_grad():
        for param in params:
            param.add_(0.1 * th.randn(param.shape, generator=generator, dtype=param.dtype))

    def penalty() -> th.Tensor:
        return model.minibatch_loss(batch, clip_range=None, clip_range_vf=None).kl_penalty

    value = penalty()
    assert value.dtype == th.float64 and value.item() > 0
    grads = th.autograd.grad(value, params, allow_unused=True, materialize_grads=True)
    value_net_ids = {id(p) for p in model.policy.value_net.parameters()}
    assert all(g.abs().max() == 0 for p, g in zip(params, grads, strict=True) if id(p) in value_net_ids)

    eps = 1e-6
    for _ in range(3):
        direction = [th.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]
        analytic = sum((g * d).sum() for g, d in zip(grads, direction, strict=True))
        with th.no_grad():
            for p, d in zip(params, direction, strict=True):
                p.add_(eps * d)
            plus = penalty().item()
            for p, d in zip(params, direction, strict=True):
                p.sub_(2 * eps * d)
            minus = penalty().item()
            for p, d in zip(params, direction, strict=True):
                p.add_(eps * d)
        assert float(analytic) == pytest.approx((plus - minus) / (2 * eps), rel=1e-6, abs=1e-10)


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    (dict(kl_coef=-0.1), "kl_coef"),
    (dict(kl_coef=float("nan")), "kl_coef"),
    (dict(kl_coef=5e3), "kl_coef"),  # above kl_coef_max
    (dict(kl_coef=0.5, kl_coef_min=1.0), "kl_coef"),
    (dict(target_kl=0.0), "target_kl"),
    (dict(target_kl=-0.01), "target_kl"),
    (dict(target_kl=lambda _: 0.0), r"target_kl\(1.0\)"),
    (dict(kl_adaptation="paper"), "kl_adaptation must be one of"),
    (dict(n_epochs=0), "n_epochs must be an integer >= 1"),
    (dict(n_epochs=2.5), "n_epochs"),
    (dict(batch_size=1), "batch_size must be an integer >= 2"),
    (dict(n_steps=0), "n_steps"),
    (dict(kl_coef_min=-1.0), "kl_coef_min"),
    (dict(kl_coef_min=2.0, kl_coef_max=1.0, kl_coef=1.5), "kl_coef_max"),
    (dict(kl_dual_lr=-1.0), "kl_dual_lr"),
    (dict(kl_early_stop=0.0), "kl_early_stop"),
    (dict(kl_estimator="approx"), "kl_estimator must be one of"),
    (dict(kl_lr_gain=-0.5), "kl_lr_gain"),
    (dict(kl_lr_min=0.0), "kl_lr_min"),
    (dict(kl_lr_max=0.5), "kl_lr_max"),
    (dict(clip_range=0.0), "clip_range"),
    (dict(clip_range=-0.2), "clip_range"),
    (dict(clip_range_vf=0.0), "clip_range_vf"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(gamma=1.5), "gamma"),
    (dict(gae_lambda=-0.1), "gae_lambda"),
    (dict(max_grad_norm=0.0), "max_grad_norm"),
    (dict(vf_coef=-1.0), "vf_coef"),
    (dict(sde_sample_freq=-2), "sde_sample_freq"),
    (dict(stats_window_size=0), "stats_window_size"),
]


@pytest.mark.parametrize(
    "kwargs, message",
    BAD_ARGUMENTS,
    # ids must not depend on object addresses (pytest-xdist workers must collect the same names)
    ids=[
        ",".join(f"{key}={'schedule' if callable(value) else value}" for key, value in kwargs.items())
        for kwargs, _ in BAD_ARGUMENTS
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KLPPO("MlpPolicy", "Pendulum-v1", **kwargs)


def test_buffer_too_small_for_advantage_normalization():
    with pytest.raises(ValueError, match=r"n_steps \* n_envs must be >= 2"):
        KLPPO("MlpPolicy", "Pendulum-v1", n_steps=1, batch_size=2)


def test_fixed_beta_may_lie_outside_the_bounds_and_defaults_are_valid():
    KLPPO("MlpPolicy", "Pendulum-v1", kl_coef=0.0, kl_adaptation="fixed")
    KLPPO("MlpPolicy", "Pendulum-v1", batch_size=1, normalize_advantage=False)
    model = KLPPO("MlpPolicy", "Pendulum-v1")
    assert model.kl_adaptation == "adaptive" and model.kl_coef == 1.0 and model.target_kl(1.0) == 0.01
    assert model.clip_range is None and model.lr_multiplier == 1.0


def test_batch_size_not_dividing_the_buffer_warns():
    with pytest.warns(UserWarning, match="does not divide"):
        KLPPO("MlpPolicy", "Pendulum-v1", n_steps=30, batch_size=16)


def test_batch_size_larger_than_the_buffer_warns():
    with pytest.warns(UserWarning, match="larger than the rollout buffer's size n_steps \\* n_envs = 64"):
        KLPPO("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=1000)


# --------------------------------------------------------------------------------------------------
# Non-finite values
# --------------------------------------------------------------------------------------------------


class _PoisonRollout(BaseCallback):
    """Write a NaN into the advantages of the ``poisoned``-th rollout and keep what the model held before its update."""

    def __init__(self, poisoned: int):
        super().__init__()
        self.poisoned = poisoned
        self.rollouts = 0
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}

    def _state(self) -> dict[str, Any]:
        return {
            "params": [p.detach().clone() for p in self.model.policy.parameters()],
            "kl_coef": self.model.kl_coef,
            "lr_multiplier": self.model.lr_multiplier,
        }

    def _on_rollout_start(self) -> None:
        if self.rollouts == self.poisoned:
            self.after = self._state()

    def _on_rollout_end(self) -> None:
        self.rollouts += 1
        if self.rollouts == self.poisoned:
            self.model.rollout_buffer.advantages[3, 0] = np.nan
            self.before = self._state()

    def _on_step(self) -> bool:
        return True


def _assert_kept(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before["kl_coef"] == after["kl_coef"]
    assert before["lr_multiplier"] == after["lr_multiplier"]
    for old, new in zip(before["params"], after["params"], strict=True):
        assert th.equal(old, new)


def test_non_finite_loss_skips_the_update_and_training_goes_on(record_logger):
    model = KLPPO("MlpPolicy", "Pendulum-v1", seed=0, **FAST)
    callback = _PoisonRollout(poisoned=2)
    log = record_logger(model)
    with pytest.warns(UserWarning, match="skipped an update"):
        model.learn(4 * 32, callback=callback)
    _assert_kept(callback.before, callback.after)
    assert log.series("train/update_skipped") == [0.0, 1.0, 0.0, 0.0]
    kls = log.series("train/kl")
    assert np.isnan(kls[1]) and np.isfinite([kls[0], *kls[2:]]).all()


@pytest.mark.parametrize("adaptation", ["adaptive", "tracking"])
def test_non_finite_kl_after_the_update_restores_the_parameters(adaptation, record_logger):
    model = KLPPO("MlpPolicy", "Pendulum-v1", seed=0, kl_adaptation=adaptation, kl_early_stop=None, **FAST)
    model.learn(32)
    before = {"params": [p.detach().clone() for p in model.policy.parameters()], "kl_coef": model.kl_coef}
    before["lr_multiplier"] = model.lr_multiplier
    # Tracking measures the KL between the two epochs (a large one: the multiplier is lowered), then after them
    measured = iter([1.0, float("nan")] if adaptation == "tracking" else [float("nan")])
    model._rollout_kl = lambda: next(measured)  # type: ignore[method-assign]
    log = record_logger(model)
    with pytest.warns(UserWarning, match="non-finite KL"):
        model.train()
    after = {"params": list(model.policy.parameters()), "kl_coef": model.kl_coef, "lr_multiplier": model.lr_multiplier}
    _assert_kept(before, after)
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4 * before["lr_multiplier"])
    assert log.series("train/update_skipped") == [1.0]


# --------------------------------------------------------------------------------------------------
# Controllers
# --------------------------------------------------------------------------------------------------


def test_adaptive_rule_changes_beta_once_per_update_from_the_measured_kl(record_logger):
    model = KLPPO("MlpPolicy", "Pendulum-v1", kl_adaptation="adaptive", kl_coef=1.0, seed=0, **FAST)
    log = record_logger(model)
    model.learn(6 * 32)
    kls, coefs = log.series("train/kl"), log.series("train/kl_coef")
    previous = 1.0
    for kl, coef in zip(kls, coefs, strict=True):
        assert coef == adaptive_kl_coef(previous, kl, 0.01)
        previous = coef
    assert model.kl_coef == coefs[-1]
    assert model.lr_multiplier == 1.0  # only the tracking controller scales the step


def test_dual_rule_follows_the_lagrangian_update(record_logger):
    model = KLPPO("MlpPolicy", "Pendulum-v1", kl_adaptation="dual", kl_dual_lr=50.0, kl_coef=0.5, seed=0, **FAST)
    log = record_logger(model)
    model.learn(4 * 32)
    previous = 0.5
    for kl, coef in zip(log.series("train/kl"), log.series("train/kl_coef"), strict=True):
        assert coef == pytest.approx(max(dual_kl_coef(previous, kl, 0.01, 50.0), 1e-3), rel=1e-12)
        previous = coef


def test_fixed_beta_never_changes(record_logger):
    model = KLPPO("MlpPolicy", "Pendulum-v1", kl_adaptation="fixed", kl_coef=0.3, seed=0, **FAST)
    log = record_logger(model)
    model.learn(3 * 32)
    assert log.series("train/kl_coef") == [0.3, 0.3, 0.3]
    assert model.kl_coef == 0.3 and model.lr_multiplier == 1.0


def test_bounds_hold_under_every_rule(record_logger):
    for adaptation in ("adaptive", "dual", "tracking"):
        model = KLPPO(
            "MlpPolicy",
            "Pendulum-v1",
            kl_adaptation=adaptation,
            target_kl=1e-9,
            kl_coef=1.0,
            kl_coef_max=2.0,
            kl_dual_lr=1e9,
            seed=0,
            **FAST,
        )
        log = record_logger(model)
        model.learn(3 * 32)
        assert max(log.series("train/kl_coef")) == 2.0, adaptation


def test_tracking_scales_only_the_actor_learning_rate(record_logger):
    model = KLPPO(
        "MlpPolicy",
        "Pendulum-v1",
        learning_rate=1e-3,
        target_kl=1e-9,
        kl_adaptation="tracking",
        kl_early_stop=None,
        kl_lr_min=0.1,
        seed=0,
        **FAST,
    )
    log = record_logger(model)
    model.learn(3 * 32)
    # KL far above its ramp: the multiplier halves at each of the 2 measurements per update and stops at kl_lr_min
    multipliers = log.series("train/lr_multiplier")
    assert multipliers == pytest.approx([0.25, 0.1, 0.1])
    actor_group, critic_group = model.policy.optimizer.param_groups
    assert actor_group["lr"] == pytest.approx(1e-3 * model.lr_multiplier)
    assert critic_group["lr"] == pytest.approx(1e-3)
    critic_ids = {id(p) for p in critic_group["params"]}
    assert critic_ids == {id(p) for p in model.policy.value_net.parameters()} | {
        id(p) for p in model.policy.mlp_extractor.value_net.parameters()
    }


def test_tracking_raises_the_step_when_the_kl_is_far_below_target(record_logger):
    model = KLPPO("MlpPolicy", "Pendulum-v1", target_kl=10.0, kl_adaptation="tracking", kl_lr_max=4.0, seed=0, **FAST)
    log = record_logger(model)
    model.learn(2 * 32)
    assert log.series("train/lr_multiplier")[-1] == pytest.approx(4.0)
    assert log.series("train/learning_rate") == pytest.approx([3e-4, 3e-4 * 4.0])


def test_early_stop_at_a_multiple_of_the_target(record_logger):
    model = KLPPO(
        "MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=16, n_epochs=10, target_kl=1e-6, kl_early_stop=2.0, seed=0
    )
    log = record_logger(model)
    model.learn(64)
    assert log.series("train/early_stop") == [1.0]
    assert log.series("train/n_epochs")[0] < 10
    model = KLPPO(
        "MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=16, n_epochs=3, target_kl=1e-6, kl_early_stop=None, seed=0
    )
    log = record_logger(model)
    model.learn(64)
    assert log.series("train/early_stop") == [0.0] and log.series("train/n_epochs") == [3.0]


def test_early_stop_message_names_the_epoch_and_the_target(capsys, record_logger):
    model = KLPPO(
        "MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=16, n_epochs=10, target_kl=1e-6, kl_early_stop=2.0, seed=0
    )
    model.verbose = 1
    log = record_logger(model)
    model.learn(64)
    epochs = int(log.series("train/n_epochs")[0])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Early stopping")]
    assert len(lines) == 1
    # The epoch as train/n_epochs counts it (from 1), and the threshold's value
    assert lines[0].startswith(f"Early stopping at epoch {epochs} of 10: minibatch KL ")
    assert lines[0].endswith(" > kl_early_stop * target_kl = 2 * 1e-06 = 2e-06")


def test_decaying_target_kl_stays_positive_past_the_end_of_the_run(capsys, record_logger):
    # lin_0.15 (the Pendulum entry's) past the end of a run and of a continued one (reset_num_timesteps=False):
    # the penalty's target, its early stop's threshold and the controller all use 1% of the start value
    schedule = LinearSchedule(start=0.15, end=0.0, end_fraction=1.0)
    model = KLPPO("MlpPolicy", "Pendulum-v1", target_kl=schedule, kl_adaptation="adaptive", verbose=1, seed=0, **FAST)
    log = record_logger(model)
    model.learn(40)  # updates at progress 1 - 32/40 = 0.2 and 1 - 64/40 = -0.6
    model.learn(8, reset_num_timesteps=False)  # total 72, one rollout to 96: progress 1 - 96/72 < 0
    assert model._current_progress_remaining < 0
    assert log.series("train/target_kl") == pytest.approx([0.15 * 0.2, 0.0015, 0.0015])
    assert log.series("train/update_skipped") == [0.0] * 3
    # At least one optimizer step in each update (the first minibatch's KL is 0, below any positive threshold)
    assert all(kl > 0 for kl in log.series("train/kl"))
    assert "target_kl = 1.25 * 0 =" not in capsys.readouterr().out


def test_controller_keeps_the_kl_near_the_target_on_pendulum(record_logger):
    """The tracking controller, seed 0: >= 80% of the updates after the fifth end with a KL in [target / 3, 3 target]."""
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    model = KLPPO("MlpPolicy", env, n_steps=512, batch_size=64, n_epochs=10, target_kl=0.01, kl_adaptation="tracking", seed=0)
    log = record_logger(model)
    model.learn(20 * 512)
    kls = np.array(log.series("train/kl"))
    assert len(kls) == 20
    in_band = (kls[5:] >= 0.01 / 3) & (kls[5:] <= 0.03)
    assert in_band.mean() >= 0.8, kls


# --------------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("adaptation", ["adaptive", "tracking"])
def test_controller_state_survives_save_load_and_continued_learning(tmp_path, adaptation):
    # A tiny target: every update measures a KL above 1.5 target, so beta doubles each time
    kwargs = dict(kl_adaptation=adaptation, target_kl=1e-9, kl_coef=1.0, seed=0, **FAST)
    model = KLPPO("MlpPolicy", "Pendulum-v1", **kwargs)
    model.learn(2 * 32)
    assert model.kl_coef == 4.0
    if adaptation == "tracking":
        assert model.lr_multiplier < 1.0
    model.save(tmp_path / "model.zip")

    loaded = KLPPO.load(tmp_path / "model.zip", env=make_vec_env("Pendulum-v1", n_envs=1, seed=1))
    assert loaded.kl_coef == 4.0
    assert loaded.lr_multiplier == model.lr_multiplier
    for (name, ours), theirs in zip(loaded.policy.state_dict().items(), model.policy.state_dict().values(), strict=True):
        assert th.equal(ours, theirs), name

    loaded.learn(32, reset_num_timesteps=False)
    assert loaded.kl_coef == 8.0
    assert loaded.num_timesteps == 3 * 32
    model.learn(32, reset_num_timesteps=False)
    assert model.kl_coef == 8.0


# --------------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------------

ALWAYS_LOGGED = {
    "train/kl",
    "train/kl_coef",
    "train/target_kl",
    "train/lr_multiplier",
    "train/learning_rate",
    "train/policy_gradient_loss",
    "train/kl_penalty",
    "train/minibatch_kl",
    "train/approx_kl",
    "train/value_loss",
    "train/entropy_loss",
    "train/loss",
    "train/explained_variance",
    "train/std",
    "train/n_epochs",
    "train/early_stop",
    "train/update_skipped",
    "train/n_updates",
}


@pytest.mark.parametrize("clip_range", [None, 0.2])
def test_logged_keys(clip_range, record_logger):
    model = KLPPO("MlpPolicy", "Pendulum-v1", clip_range=clip_range, clip_range_vf=0.5, seed=0, **FAST)
    log = record_logger(model)
    model.learn(32)
    keys = {key for key in log.values if key.startswith("train/")}
    clipping = {"train/clip_fraction", "train/clip_range"}
    assert ALWAYS_LOGGED | {"train/clip_range_vf"} <= keys
    assert (clipping <= keys) == (clip_range is not None)
    assert (clipping & keys == set()) == (clip_range is None)
    assert np.isfinite([log.series(key)[-1] for key in ALWAYS_LOGGED]).all()


def test_tensorboard_callbacks_and_progress_bar(tmp_path):
    class Counter(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.steps = 0

        def _on_step(self) -> bool:
            self.steps += 1
            return True

    counter = Counter()
    eval_callback = EvalCallback(make_vec_env("CartPole-v1", n_envs=1, seed=5), eval_freq=32, n_eval_episodes=1)
    model = KLPPO("MlpPolicy", "CartPole-v1", tensorboard_log=str(tmp_path), seed=0, **FAST)
    model.learn(64, callback=[counter, eval_callback], progress_bar=True)
    assert counter.steps == 64
    assert eval_callback.n_calls == 64 and np.isfinite(eval_callback.last_mean_reward)
    run_dir = tmp_path / "KLPPO_1"
    assert run_dir.is_dir() and any(path.name.startswith("events.out.tfevents") for path in run_dir.iterdir())


# --------------------------------------------------------------------------------------------------
# Schedules, seeds, devices and custom policies
# --------------------------------------------------------------------------------------------------


def test_schedules_and_custom_rollout_buffer(record_logger):
    model = KLPPO(
        "MlpPolicy",
        "Pendulum-v1",
        learning_rate=lambda progress: 1e-3 * progress,
        target_kl=lambda progress: 0.01 + 0.01 * progress,
        clip_range=lambda progress: 0.1 + 0.2 * progress,
        rollout_buffer_class=RolloutBuffer,
        seed=0,
        **FAST,
    )
    log = record_logger(model)
    model.learn(2 * 32)
    # SB3 updates the progress remaining after each rollout: 0.5, then 0
    assert log.series("train/target_kl") == pytest.approx([0.015, 0.01])
    assert log.series("train/clip_range") == pytest.approx([0.2, 0.1])
    assert log.series("train/learning_rate")[0] == pytest.approx(5e-4)  # the multiplier starts at 1


def test_same_seed_same_run(record_logger):
    # Each model seeds the global generators when it is built: build and train one after the other
    first = KLPPO("MlpPolicy", "CartPole-v1", seed=3, **FAST)
    first_log = record_logger(first)
    first.learn(64)
    second = KLPPO("MlpPolicy", "CartPole-v1", seed=3, **FAST)
    second_log = record_logger(second)
    second.learn(64)
    assert second_log.series("train/kl") == first_log.series("train/kl")
    assert first.kl_coef == second.kl_coef


@pytest.mark.cuda
@pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA device")
def test_cuda(record_logger):
    model = KLPPO("MlpPolicy", "Pendulum-v1", device="cuda", seed=0, **FAST)
    log = record_logger(model)
    model.learn(2 * 32)
    assert log.series("train/update_skipped") == [0.0, 0.0]
    assert all(p.device.type == "cuda" for p in model._old_policy.parameters())


class _AuditedPolicy(ActorCriticPolicy):
    """Overrides the public methods KLPPO builds on, counting the calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = {"evaluate_actions": 0, "get_distribution": 0}

    def evaluate_actions(self, obs, actions):
        self.calls["evaluate_actions"] += 1
        return super().evaluate_actions(obs, actions)

    def get_distribution(self, obs):
        self.calls["get_distribution"] += 1
        return super().get_distribution(obs)


@pytest.mark.parametrize("kl_estimator", ["exact", "sample"])
def test_custom_policy_overrides_of_the_public_methods_are_used(kl_estimator, monkeypatch, record_logger):
    model = KLPPO(_AuditedPolicy, "CartPole-v1", kl_estimator=kl_estimator, seed=0, **FAST)
    model.learn(32)
    model.policy.calls.update(evaluate_actions=0, get_distribution=0)
    log = record_logger(model)
    model.train()
    (n_epochs,) = log.series("train/n_epochs")  # one update
    steps = int(n_epochs) * 2  # two minibatches of 16 per epoch
    assert model.policy.calls["evaluate_actions"] == steps
    if kl_estimator == "exact":  # the closed form compares the policies' distributions
        assert model.policy.calls["get_distribution"] >= steps
    # an override that changes the loss is seen by the loss
    batch = next(iter(model.rollout_buffer.get(16)))
    reference = model.minibatch_loss(batch, clip_range=None, clip_range_vf=None)
    original = _AuditedPolicy.evaluate_actions

    def shifted(policy, obs, actions):
        values, log_prob, entropy = original(policy, obs, actions)
        return values + 1.0, log_prob, entropy

    monkeypatch.setattr(_AuditedPolicy, "evaluate_actions", shifted)
    shifted_loss = model.minibatch_loss(batch, clip_range=None, clip_range_vf=None)
    assert not th.allclose(shifted_loss.value_loss, reference.value_loss)


class _OwnEvaluation(ActorCriticPolicy):
    """SB3's policy with its own ``evaluate_actions`` (the same numbers): KLPPO then builds the KL's distribution apart."""

    def evaluate_actions(self, obs, actions):
        return super().evaluate_actions(obs, actions)


def _loss_and_gradient(policy, env_id: str, kl_estimator: str):
    model = KLPPO(policy, env_id, kl_estimator=kl_estimator, kl_coef=3.0, seed=0, **FAST)
    model.learn(32)
    for param in model.policy.parameters():  # move away from pi_old, so that the KL and its gradient are not 0
        param.data.add_(0.05 * th.randn_like(param))
    batch = next(iter(model.rollout_buffer.get(16)))
    loss = model.minibatch_loss(batch, clip_range=None, clip_range_vf=None)
    gradient = th.autograd.grad(loss.loss, list(model.policy.parameters()))
    return model, loss, gradient


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
@pytest.mark.parametrize("kl_estimator", ["exact", "sample"])
def test_one_distribution_serves_the_surrogate_and_the_kl(env_id, kl_estimator, monkeypatch):
    ours, loss, gradient = _loss_and_gradient("MlpPolicy", env_id, kl_estimator)
    assert ours._builds_distribution_once()
    reference_model, reference, reference_gradient = _loss_and_gradient(_OwnEvaluation, env_id, kl_estimator)
    assert not reference_model._builds_distribution_once()
    assert float(loss.kl.detach()) > 0
    for name, a, b in zip(loss._fields, loss, reference, strict=True):
        assert th.allclose(a, b, rtol=1e-5, atol=1e-7), name
    for a, b in zip(gradient, reference_gradient, strict=True):
        assert th.allclose(a, b, rtol=1e-4, atol=1e-6)

    # The current policy's actor runs once per minibatch (with SB3's evaluate_actions it ran twice for the exact KL)
    calls = {"ours": 0, "reference": 0}
    for name, model in (("ours", ours), ("reference", reference_model)):
        forward_actor = model.policy.mlp_extractor.forward_actor

        def counting(features, name=name, forward_actor=forward_actor):
            calls[name] += 1
            return forward_actor(features)

        monkeypatch.setattr(model.policy.mlp_extractor, "forward_actor", counting)
        model.minibatch_loss(next(iter(model.rollout_buffer.get(16))), clip_range=None, clip_range_vf=None)
    assert calls["ours"] == 1
    assert calls["reference"] == (2 if kl_estimator == "exact" else 1)
