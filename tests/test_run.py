"""
Both algorithms run like any SB3 algorithm: action and observation spaces, gSDE, VecEnvs, callbacks, progress bar,
TensorBoard, devices.
"""

import glob

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import (
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import (
    FakeImageEnv,
    IdentityEnv,
    IdentityEnvBox,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize
from torch.overrides import TorchFunctionMode

import sb3_npg
from sb3_npg import KLPPO, NPG
from sb3_npg.common.parameters import actor_parameters, probe_observation
from sb3_npg.klppo.controllers import next_kl_coef

ALGOS = [NPG, KLPPO]
SMALL = dict(n_steps=64, batch_size=32, policy_kwargs=dict(net_arch=[16]))
SMALL_DICT = {**SMALL, "policy_kwargs": {}}
# KLPPO over tiny rollouts, with a learning rate the step-size controller can bring to the target within three updates
TINY_KLPPO = dict(n_steps=32, batch_size=16, n_epochs=2, learning_rate=3e-3, policy_kwargs=dict(net_arch=[16]))


class DictImageEnv(gym.Env):
    """Dict observations holding an image and a vector; Discrete actions."""

    def __init__(self):
        self.observation_space = spaces.Dict(
            {"img": spaces.Box(0, 255, (36, 36, 1), dtype=np.uint8), "vec": spaces.Box(-1, 1, (3,), dtype=np.float32)}
        )
        self.action_space = spaces.Discrete(3)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.observation_space.seed(seed)
        self._t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self._t += 1
        return self.observation_space.sample(), float(action == 1), self._t >= 20, False, {}


class ImageEnv(DictImageEnv):
    def __init__(self):
        super().__init__()
        self.observation_space = spaces.Box(0, 255, (36, 36, 1), dtype=np.uint8)
        self.action_space = spaces.Box(-1, 1, (2,), dtype=np.float32)

    def step(self, action):
        obs, _, terminated, truncated, info = super().step(0)
        return obs, -float(np.sum(np.square(action))), terminated, truncated, info


class DictVectorEnv(DictImageEnv):
    """Dict observations of two vectors; Discrete actions."""

    def __init__(self):
        super().__init__()
        self.observation_space = spaces.Dict(
            {"a": spaces.Box(-1, 1, (3,), dtype=np.float32), "b": spaces.Box(-1, 1, (2,), dtype=np.float32)}
        )


def _algo_id(algo):
    return algo.__name__


class _RewardingImageEnv(FakeImageEnv):
    """Random images; reward 1 for action 0 (the policy has something to learn)."""

    def step(self, action):
        obs, _, terminated, truncated, info = super().step(action)
        return obs, float(action == 0), terminated, truncated, info


def _rewarding_image_env():
    env = _RewardingImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=True)
    env.observation_space.seed(0)  # the observations are random draws: make them repeatable
    return env


def _learn_and_check_updates(record_logger, model, n_updates, kl_factor=3.0):
    """
    Learn ``n_updates`` updates, then check that every one was taken, moved the actor, and had a KL near its target.

    Every logged KL must be finite and positive. NPG (no line search) sizes each step so that the quadratic model
    of its KL is the target: the measured KL of every update must be within a factor 2 of it. KLPPO's tracking
    controller steers the KL towards the target over updates: the last update's KL must be within ``kl_factor`` of
    it (3; 10 over tiny rollouts of 32 samples, whose KL is noisy). KLPPO's other controllers (the default, the
    paper's rule, among them) act on beta alone: every logged beta must be the rule's answer to the update's KL.
    """
    log = record_logger(model)
    actor = actor_parameters(model.policy)
    before = [p.detach().clone() for p in actor]
    initial_coef = getattr(model, "kl_coef", None)
    model.learn(n_updates * model.n_steps * model.n_envs)
    assert log.series("train/update_skipped") == [0.0] * n_updates
    assert not all(th.equal(p, q) for p, q in zip(actor, before, strict=True))
    kls, targets = np.array(log.series("train/kl")), np.array(log.series("train/target_kl"))
    assert len(kls) == n_updates and np.all(np.isfinite(kls) & (kls > 0)), kls
    if isinstance(model, NPG):
        assert np.allclose(log.series("train/predicted_kl"), targets, rtol=1e-3)
        assert np.all((kls > targets / 2) & (kls < 2 * targets)), kls
    elif model.kl_adaptation == "tracking":
        assert targets[-1] / kl_factor < kls[-1] < kl_factor * targets[-1], kls
    else:  # the other rules act on beta alone: each update's beta follows from the one before and the update's KL
        coef = initial_coef
        for kl, target, logged in zip(kls, targets, log.series("train/kl_coef"), strict=True):
            coef = next_kl_coef(model.kl_adaptation, coef, kl, target, model.kl_dual_lr, model.kl_coef_min, model.kl_coef_max)
            assert logged == pytest.approx(coef)
    return log


# === Spaces ===

ACTION_SPACES = {
    "discrete": lambda: IdentityEnv(dim=3, ep_length=16),
    "box": lambda: IdentityEnvBox(ep_length=16),
    "multidiscrete": lambda: IdentityEnvMultiDiscrete(dim=3, ep_length=16),
    "multibinary": lambda: IdentityEnvMultiBinary(dim=3, ep_length=16),
}


@pytest.mark.parametrize("space", list(ACTION_SPACES))
@pytest.mark.parametrize(
    "algo, kwargs, n_updates",
    [
        pytest.param(NPG, SMALL, 2, id="NPG"),
        pytest.param(KLPPO, TINY_KLPPO, 3, id="KLPPO"),
        pytest.param(
            KLPPO, {**TINY_KLPPO, "kl_estimator": "sample", "kl_adaptation": "tracking"}, 3, id="KLPPO-tracking-sample_kl"
        ),
    ],
)
def test_action_spaces(algo, kwargs, n_updates, space, record_logger):
    model = algo("MlpPolicy", ACTION_SPACES[space](), seed=0, **kwargs)
    _learn_and_check_updates(record_logger, model, n_updates, kl_factor=10.0)
    # The action predicted for each space is SB3's PPO's: its shape and dtype, inside the space
    env = model.get_env()
    observation = env.reset()
    action, _ = model.predict(observation, deterministic=True)
    reference, _ = PPO("MlpPolicy", env, n_steps=64, seed=0).predict(observation, deterministic=True)
    assert (action.shape, action.dtype) == (reference.shape, reference.dtype)
    assert env.action_space.contains(action[0])


@pytest.mark.parametrize(
    "algo, policy, make_env, kwargs, n_updates, kl_factor",
    [
        pytest.param(NPG, "CnnPolicy", ImageEnv, SMALL_DICT, 1, None, id="NPG-image"),
        pytest.param(NPG, "MultiInputPolicy", DictImageEnv, SMALL_DICT, 1, None, id="NPG-dict"),
        pytest.param(KLPPO, "CnnPolicy", ImageEnv, SMALL_DICT, 1, 3.0, id="KLPPO-image"),
        pytest.param(KLPPO, "MultiInputPolicy", DictImageEnv, SMALL_DICT, 1, 3.0, id="KLPPO-dict"),
        pytest.param(
            KLPPO,
            "CnnPolicy",
            _rewarding_image_env,
            {**TINY_KLPPO, "policy_kwargs": dict(features_extractor_kwargs=dict(features_dim=16))},
            3,
            10.0,
            id="KLPPO-image-discrete_actions",
        ),
        pytest.param(
            KLPPO,
            "MultiInputPolicy",
            lambda: SimpleMultiObsEnv(random_start=False),
            TINY_KLPPO,
            3,
            10.0,
            id="KLPPO-multi_obs_grid",
        ),
    ],
)
def test_image_and_dict_observations(algo, policy, make_env, kwargs, n_updates, kl_factor, record_logger):
    _learn_and_check_updates(record_logger, algo(policy, make_env(), seed=0, **kwargs), n_updates, kl_factor)


def test_dict_observations_with_subsampling(record_logger):
    # A Fisher of 64 samples for a small network: the step's KL on the whole batch stays near the target.
    # (With a CNN and a Fisher of about 20 samples it can be many times the target: see the README.)
    model = NPG("MultiInputPolicy", DictVectorEnv(), seed=0, sub_sampling_factor=3, n_steps=192, batch_size=64)
    _learn_and_check_updates(record_logger, model, 2)


def test_separate_features_extractors(record_logger):
    kwargs = dict(n_steps=32, batch_size=16, n_epochs=2, learning_rate=3e-3)
    model = KLPPO(
        "MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(net_arch=[8], share_features_extractor=False), **kwargs
    )
    _learn_and_check_updates(record_logger, model, 3, kl_factor=10.0)


@pytest.mark.parametrize(
    "algo, kwargs, n_updates, kl_factor",
    [
        pytest.param(NPG, {**SMALL, "policy_kwargs": {}}, 2, None, id="NPG-full_std"),
        pytest.param(NPG, {**SMALL, "policy_kwargs": dict(full_std=False, squash_output=True)}, 2, None, id="NPG-squashed"),
        pytest.param(KLPPO, {**SMALL, "policy_kwargs": {}}, 2, 3.0, id="KLPPO-full_std"),
        pytest.param(KLPPO, {**SMALL, "policy_kwargs": dict(full_std=False, squash_output=True)}, 2, 3.0, id="KLPPO-squashed"),
        pytest.param(KLPPO, TINY_KLPPO, 3, 10.0, id="KLPPO-tiny"),
        pytest.param(
            KLPPO, {**TINY_KLPPO, "clip_range": 0.2, "kl_adaptation": "tracking"}, 3, 10.0, id="KLPPO-tracking-tiny-clipped"
        ),
    ],
)
def test_gsde(algo, kwargs, n_updates, kl_factor, record_logger):
    model = algo("MlpPolicy", "Pendulum-v1", use_sde=True, sde_sample_freq=4, seed=0, **kwargs)
    _learn_and_check_updates(record_logger, model, n_updates, kl_factor)


# === VecEnvs, callbacks, logging ===


class HugeBounds(gym.ObservationWrapper):
    """An environment whose Box is bounded by float32's largest value, as gymnasium 0.29 bounds CartPole's velocities."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        big = np.finfo(np.float32).max
        self.observation_space = spaces.Box(-big, big, env.observation_space.shape, np.float32)

    def observation(self, observation):
        return observation


def test_probe_observation_is_finite_and_in_the_space():
    space = spaces.Dict(
        {
            "huge": HugeBounds(gym.make("CartPole-v1")).observation_space,
            "positive": spaces.Box(1.0, 2.0, (2,), np.float32),
            "image": spaces.Box(0, 255, (4, 4, 1), np.uint8),
            "discrete": spaces.Discrete(3, start=5),
        }
    )
    space.seed(0)
    state = space["discrete"].np_random.bit_generator.state
    observation = probe_observation(space)
    assert space.contains(observation)
    assert np.array_equal(observation["huge"], np.zeros(4, np.float32))
    assert np.array_equal(observation["positive"], np.ones(2, np.float32))
    assert space["discrete"].np_random.bit_generator.state == state  # sampled from a copy


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_huge_observation_bounds_do_not_break_the_actor_probe(algo):
    # A sample of such a Box is near 1e38; a ReLU network turned it into inf and NaN logits, which
    # torch.distributions refused while the algorithm looked for the actor's parameters (1 seed in 6)
    for seed in range(12):
        env = HugeBounds(gym.make("CartPole-v1"))
        env.observation_space.seed(seed)
        policy_kwargs = dict(activation_fn=th.nn.ReLU, net_arch=dict(pi=[16, 8], vf=[8]))
        model = algo("MlpPolicy", env, n_steps=32, batch_size=32, seed=seed, policy_kwargs=policy_kwargs)
        assert {id(p) for p in model.policy.action_net.parameters()} <= {id(p) for p in actor_parameters(model.policy)}
    model.learn(64)
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_vec_normalize_and_subproc_vec_env(algo):
    env = VecNormalize(
        make_vec_env("Pendulum-v1", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": "fork"})
    )
    model = algo("MlpPolicy", env, seed=0, **SMALL)
    model.learn(256)
    assert env.obs_rms.count > 256
    env.close()


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_callbacks_and_progress_bar(algo, tmp_path):
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    stop = StopTrainingOnRewardThreshold(reward_threshold=-1.0, verbose=0)  # always met: stops at the first eval
    eval_callback = EvalCallback(eval_env, callback_on_new_best=stop, eval_freq=128, n_eval_episodes=2, verbose=0)
    checkpoint = CheckpointCallback(save_freq=64, save_path=str(tmp_path / "ckpt"), name_prefix="model")
    model = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL)
    model.learn(10_000, callback=[checkpoint, eval_callback], progress_bar=True)
    assert model.num_timesteps < 10_000  # stopped by the threshold callback
    assert len(glob.glob(str(tmp_path / "ckpt" / "model_*_steps.zip"))) >= 2
    assert eval_callback.last_mean_reward > 0


def _tensorboard_keys(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (event_file,) = glob.glob(f"{log_dir}/**/events.out.tfevents.*", recursive=True)
    accumulator = EventAccumulator(event_file)
    accumulator.Reload()
    return set(accumulator.Tags()["scalars"])


def test_tensorboard_holds_npg_keys(tmp_path):
    model = NPG("MlpPolicy", "Pendulum-v1", tensorboard_log=str(tmp_path), seed=0, **SMALL)
    model.learn(128)
    keys = _tensorboard_keys(tmp_path)
    expected = [
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
    ]
    assert {f"train/{key}" for key in expected} <= keys
    assert "rollout/ep_rew_mean" in keys or "time/fps" in keys


def test_tensorboard_line_search_key(tmp_path):
    model = NPG("MlpPolicy", "CartPole-v1", line_search=True, tensorboard_log=str(tmp_path), seed=0, **SMALL)
    model.learn(128)  # the second rollout dumps the first update's keys
    assert "train/line_search_success" in _tensorboard_keys(tmp_path)


# === Devices ===


class _TensorDevices(TorchFunctionMode):
    """Records the device of every tensor that a torch function returns, with the function's name."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, set[str]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for value in result if isinstance(result, tuple | list) else (result,):
            if isinstance(value, th.Tensor):
                self.seen.setdefault(str(value.device), set()).add(getattr(func, "__name__", repr(func)))
        return result


@pytest.mark.parametrize(
    "algo, policy, kwargs",
    [
        pytest.param(NPG, "MlpPolicy", {}, id="NPG"),
        pytest.param(
            NPG,
            "MlpPolicy",
            dict(critic_solver="trust_region", line_search=True, sub_sampling_factor=2),
            id="NPG-trust_region_critic-line_search",
        ),
        pytest.param(KLPPO, "MlpPolicy", dict(clip_range=0.2, clip_range_vf=0.5), id="KLPPO"),
        pytest.param(sb3_npg.RecurrentNPG, "MlpLstmPolicy", dict(critic_solver="trust_region"), id="RecurrentNPG"),
        pytest.param(sb3_npg.RecurrentKLPPO, "MlpLstmPolicy", {}, id="RecurrentKLPPO"),
    ],
)
def test_update_creates_every_tensor_on_the_policys_device(algo, policy, kwargs):
    """
    The update (the gradient, the Fisher-vector products and the CG solve, the line search, the critic's fit, the
    KL) creates every tensor on the policy's device: with torch's default device set to ``meta`` during
    ``train()``, a tensor created without naming its device would land there (on CUDA it would be a host tensor).
    """
    model = algo(policy, "Pendulum-v1", n_steps=64, batch_size=32, device="cpu", seed=0, **kwargs)
    model.learn(64)  # fills the buffer (and the optimizer's state)
    devices = _TensorDevices()
    with th.device("meta"), devices:
        model.train()
    assert set(devices.seen) == {"cpu"}, devices.seen
    assert model.logger.name_to_value["train/update_skipped"] == 0.0


@pytest.mark.cuda
@pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_cuda(algo, env_id):
    model = algo("MlpPolicy", env_id, device="cuda", seed=0, **SMALL)
    model.learn(128)
    assert all(p.device.type == "cuda" for p in model.policy.parameters())
    obs = model.get_env().reset()
    model.predict(obs)
