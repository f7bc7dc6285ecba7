"""save/load, continued learning, get/set_parameters and predict survive a round trip for both algorithms."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize

import sb3_npg

ALGOS = [sb3_npg.NPG, sb3_npg.KLPPO]
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
    for key in ("n_steps", "batch_size", "gamma"):
        assert getattr(loaded, key) == getattr(model, key)
    assert loaded.target_kl(0.5) == model.target_kl(0.5)

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


FIXTURES = Path(__file__).parent / "fixtures"
SCHEDULE_ARGS = {
    sb3_npg.NPG: dict(target_kl=0.02),
    sb3_npg.KLPPO: dict(target_kl=0.02, clip_range=0.2, clip_range_vf=0.5),
}


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_schedule_arguments_are_stored_as_sb3_schedule_objects(algo):
    model = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL, **SCHEDULE_ARGS[algo])
    for key, value in SCHEDULE_ARGS[algo].items():
        schedule = getattr(model, key)
        assert isinstance(schedule, FloatSchedule), key
        assert isinstance(schedule.value_schedule, ConstantSchedule), key
        assert schedule(0.3) == value
    annealed = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL, target_kl=LinearSchedule(0.02, 0.0, 1.0))
    assert isinstance(annealed.target_kl, FloatSchedule) and annealed.target_kl(0.5) == pytest.approx(0.01)


_LOAD_IN_FRESH_PROCESS = """
import json, sys
import numpy as np
import sb3_npg
algo = getattr(sb3_npg, sys.argv[1])
model = algo.load(sys.argv[2], device="cpu")
observations = np.load(sys.argv[3])
actions, _ = model.predict(observations, deterministic=True)
keys = [key for key in ("target_kl", "clip_range", "clip_range_vf") if hasattr(model, key)]
print(json.dumps({
    "types": {key: type(getattr(model, key)).__name__ for key in keys},
    "values": {key: [getattr(model, key)(p) for p in (1.0, 0.5, 0.0)] for key in keys},
    "actions": actions.tolist(),
}))
"""


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_save_then_load_in_a_fresh_process(algo, tmp_path):
    kwargs = {**SCHEDULE_ARGS[algo], "target_kl": LinearSchedule(0.02, 0.0, 1.0)}
    model = algo("MlpPolicy", "CartPole-v1", seed=0, device="cpu", **SMALL, **kwargs)
    model.learn(64)
    model.save(tmp_path / "model")
    observations = np.stack([model.observation_space.sample() for _ in range(8)])
    np.save(tmp_path / "obs.npy", observations)
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:
        data = archive.read("data").decode()
    assert "<lambda>" not in data and "<locals>" not in data

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, algo.__name__, str(tmp_path / "model.zip"), str(tmp_path / "obs.npy")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    loaded = json.loads(process.stdout.strip().splitlines()[-1])
    for key in kwargs:
        assert loaded["types"][key] == "FloatSchedule"
        assert loaded["values"][key] == pytest.approx([getattr(model, key)(p) for p in (1.0, 0.5, 0.0)])
    assert loaded["actions"] == model.predict(observations, deterministic=True)[0].tolist()


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_zip_saved_by_version_0_1_0_loads_predicts_and_learns(algo):
    # Saved by sb3-npg 0.1.0: CartPole-v1, n_steps=64, batch_size=32, net_arch=[8], seed=0, 64 steps learned
    # (KLPPO with clip_range=0.2)
    path = FIXTURES / f"{algo.__name__.lower()}_cartpole_v0.1.0.zip"
    model = algo.load(path, env=make_vec_env("CartPole-v1", n_envs=1, seed=0), device="cpu")
    assert isinstance(model.target_kl, FloatSchedule) and model.target_kl(0.5) == pytest.approx(0.01)
    if algo is not sb3_npg.NPG:
        assert isinstance(model.clip_range, FloatSchedule) and model.clip_range(0.5) == pytest.approx(0.2)
        assert model.clip_range_vf is None
    assert not any(key.endswith("_schedule") and key != "lr_schedule" for key in vars(model))
    observations = np.stack([model.observation_space.sample() for _ in range(8)])
    actions, _ = model.predict(observations, deterministic=True)
    assert all(model.action_space.contains(action) for action in actions)
    model.learn(64, reset_num_timesteps=False)
    assert model.num_timesteps == 128
    assert model.logger.name_to_value["train/update_skipped"] == 0.0


def test_klppo_models_keep_the_controller_they_were_trained_with(tmp_path):
    """The default controller changed in 0.2 (tracking -> adaptive): loading never swaps a saved model's controller."""
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    for adaptation in ("tracking", "adaptive"):
        model = sb3_npg.KLPPO("MlpPolicy", env, kl_adaptation=adaptation, seed=0, **SMALL)
        model.save(tmp_path / adaptation)
        loaded = sb3_npg.KLPPO.load(tmp_path / adaptation, env=env, device="cpu")
        assert loaded.kl_adaptation == adaptation
        loaded.learn(64, reset_num_timesteps=False)
        assert loaded.kl_adaptation == adaptation
    assert sb3_npg.KLPPO("MlpPolicy", env, **SMALL).kl_adaptation == "adaptive"


def test_klppo_zip_saved_by_version_0_1_0_keeps_tracking():
    """0.1.0's default controller was tracking: its models load, and learn on, with it."""
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    old = sb3_npg.KLPPO.load(FIXTURES / "klppo_cartpole_v0.1.0.zip", env=env, device="cpu")
    assert old.kl_adaptation == "tracking"
    old.learn(64, reset_num_timesteps=False)
    assert old.kl_adaptation == "tracking"
