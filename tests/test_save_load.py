"""save/load, continued learning, get/set_parameters and predict survive a round trip for both algorithms."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import sb3_npg

ALGOS = [sb3_npg.NPG] + ([sb3_npg.KLPPO] if hasattr(sb3_npg, "KLPPO") else [])
SMALL = dict(n_steps=64, batch_size=32, policy_kwargs=dict(net_arch=[16]))


def _algo_id(algo):
    return algo.__name__


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_save_load_round_trip(algo, env_id, tmp_path):
    model = algo("MlpPolicy", env_id, seed=0, **SMALL)
    model.learn(128)
    observations = np.stack([model.observation_space.sample() for _ in range(8)])
    actions, _ = model.predict(observations, deterministic=True)
    params = model.get_parameters()

    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", env=make_vec_env(env_id, n_envs=1, seed=1))

    loaded_actions, _ = loaded.predict(observations, deterministic=True)
    assert np.allclose(actions, loaded_actions)
    loaded_params = loaded.get_parameters()
    for key, value in params["policy"].items():
        assert th.equal(value, loaded_params["policy"][key])
    # the optimizer's state (Adam moments of the critic) survives too
    assert params["policy.optimizer"]["state"].keys() == loaded_params["policy.optimizer"]["state"].keys()
    for index, state in params["policy.optimizer"]["state"].items():
        assert th.equal(state["exp_avg"], loaded_params["policy.optimizer"]["state"][index]["exp_avg"])
    for key in ("n_steps", "batch_size", "gamma", "target_kl"):
        assert getattr(loaded, key) == getattr(model, key)

    loaded.learn(128, reset_num_timesteps=False)
    assert loaded.num_timesteps == 256
    assert loaded._n_updates > model._n_updates


def test_npg_ownership_after_load(tmp_path):
    model = sb3_npg.NPG("MlpPolicy", "Pendulum-v1", seed=0, **SMALL)
    model.learn(64)
    model.save(tmp_path / "npg")
    loaded = sb3_npg.NPG.load(tmp_path / "npg")
    # actor/critic ownership is re-derived from the loaded policy, and the critic's optimizer holds the critic only
    loaded_ids = {id(p) for p in loaded.policy.parameters()}
    assert {id(p) for p in loaded.actor_params} <= loaded_ids
    assert len(loaded.actor_params) == len(model.actor_params)
    optimized = {id(p) for group in loaded.policy.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in loaded.critic_params}
    assert optimized.isdisjoint({id(p) for p in loaded.actor_params})


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_set_parameters_and_continue(algo):
    source = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL)
    source.learn(128)
    target = algo("MlpPolicy", "CartPole-v1", seed=1, **SMALL)
    target.set_parameters(source.get_parameters())
    for p, q in zip(source.policy.parameters(), target.policy.parameters(), strict=True):
        assert th.equal(p, q)
    target.learn(64)


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_vec_normalize_statistics_saved_beside_the_model(algo, tmp_path):
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2, seed=0))
    model = algo("MlpPolicy", env, seed=0, **SMALL)
    model.learn(128)
    model.save(tmp_path / "model")
    env.save(str(tmp_path / "vecnormalize.pkl"))
    restored = VecNormalize.load(str(tmp_path / "vecnormalize.pkl"), make_vec_env("Pendulum-v1", n_envs=2, seed=0))
    assert np.allclose(restored.obs_rms.mean, env.obs_rms.mean)
    loaded = algo.load(tmp_path / "model", env=restored)
    loaded.learn(128, reset_num_timesteps=False)
