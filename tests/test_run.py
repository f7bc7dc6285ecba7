"""Both algorithms run like any SB3 algorithm: spaces, gSDE, VecEnvs, callbacks, progress bar, TensorBoard, devices."""

import glob

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import (
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import IdentityEnv, IdentityEnvBox, IdentityEnvMultiBinary, IdentityEnvMultiDiscrete
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

import sb3_npg

ALGOS = [sb3_npg.NPG] + ([sb3_npg.KLPPO] if hasattr(sb3_npg, "KLPPO") else [])
SMALL = dict(n_steps=64, batch_size=32, policy_kwargs=dict(net_arch=[16]))
SMALL_DICT = {**SMALL, "policy_kwargs": {}}


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


def _learn_and_check_updates(model, total_timesteps):
    """
    Learn, then check that every update was taken, moved the policy, and had a KL near its target.

    NPG (no line search) sizes each step so that the quadratic model of its KL is the target: the measured
    KL must be within a factor 2 of it. KLPPO's controller steers the KL towards the target over updates:
    the last update's KL must be of the same order (within a factor 3).
    """
    values: dict[str, list[float]] = {}
    logger = configure(None, [])
    record = logger.record

    def recording(key, value, exclude=None):
        values.setdefault(key, []).append(value)
        record(key, value, exclude)

    logger.record = recording
    model.set_logger(logger)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps)
    n_updates = total_timesteps // (model.n_steps * model.n_envs)
    assert values["train/update_skipped"] == [0.0] * n_updates
    assert not all(th.equal(p, q) for p, q in zip(model.policy.parameters(), before, strict=True))
    kls, targets = np.array(values["train/kl"]), np.array(values["train/target_kl"])
    if isinstance(model, sb3_npg.NPG):
        assert np.allclose(values["train/predicted_kl"], targets, rtol=1e-3)
        assert np.all((kls > targets / 2) & (kls < 2 * targets)), kls
    else:
        assert targets[-1] / 3 < kls[-1] < 3 * targets[-1], kls
    return values


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
@pytest.mark.parametrize(
    "env",
    [IdentityEnv(4), IdentityEnvBox(), IdentityEnvMultiDiscrete(3), IdentityEnvMultiBinary(3)],
    ids=["discrete", "box", "multidiscrete", "multibinary"],
)
def test_action_spaces(algo, env):
    model = algo("MlpPolicy", env, seed=0, **SMALL)
    model.learn(128)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_image_and_dict_observations(algo):
    _learn_and_check_updates(algo("CnnPolicy", ImageEnv(), seed=0, **{**SMALL, "policy_kwargs": {}}), 64)
    _learn_and_check_updates(algo("MultiInputPolicy", DictImageEnv(), seed=0, **{**SMALL, "policy_kwargs": {}}), 64)


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_dict_observations_with_subsampling(algo):
    if algo is not sb3_npg.NPG:
        pytest.skip("sub_sampling_factor is an NPG hyperparameter")
    # A Fisher of 64 samples for a small network: the step's KL on the whole batch stays near the target.
    # (With a CNN and a Fisher of about 20 samples it can be many times the target: see the README.)
    model = algo("MultiInputPolicy", DictVectorEnv(), seed=0, sub_sampling_factor=3, n_steps=192, batch_size=64)
    _learn_and_check_updates(model, 384)


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
@pytest.mark.parametrize("sde_kwargs", [dict(), dict(full_std=False, squash_output=True)], ids=["full_std", "squashed"])
def test_gsde(algo, sde_kwargs):
    model = algo("MlpPolicy", "Pendulum-v1", use_sde=True, sde_sample_freq=4, seed=0, **{**SMALL, "policy_kwargs": sde_kwargs})
    _learn_and_check_updates(model, 128)


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
    model = sb3_npg.NPG("MlpPolicy", "Pendulum-v1", tensorboard_log=str(tmp_path), seed=0, **SMALL)
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
    model = sb3_npg.NPG("MlpPolicy", "CartPole-v1", line_search=True, tensorboard_log=str(tmp_path), seed=0, **SMALL)
    model.learn(128)  # the second rollout dumps the first update's keys
    assert "train/line_search_success" in _tensorboard_keys(tmp_path)


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_cpu_device_keeps_everything_on_cpu(algo):
    model = algo("MlpPolicy", "CartPole-v1", device="cpu", seed=0, **SMALL)
    model.learn(64)
    assert all(p.device.type == "cpu" for p in model.policy.parameters())


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
