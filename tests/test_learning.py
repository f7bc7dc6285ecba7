"""Learning tests: train with the shipped hyperparameters and evaluate deterministically on a separate env."""

import pytest
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from sb3_npg.zoo.config import build_model, load_hyperparams, make_env_from_hyperparams

CASES = [
    # algo, env, seed, minimum mean return over 10 deterministic episodes
    ("npg", "CartPole-v1", 0, 475.0),
    ("npg", "CartPole-v1", 1, 475.0),
    ("npg", "Pendulum-v1", 0, -250.0),
    ("klppo", "CartPole-v1", 0, 475.0),
    ("klppo", "CartPole-v1", 1, 475.0),
    ("klppo", "Pendulum-v1", 0, -250.0),
]


@pytest.mark.slow
@pytest.mark.parametrize("algo, env_id, seed, threshold", CASES, ids=[f"{a}-{e}-seed{s}" for a, e, s, _ in CASES])
def test_reaches_score(algo, env_id, seed, threshold):
    model, n_timesteps = build_model(algo, env_id, seed=seed, device="cpu")
    model.learn(n_timesteps)

    eval_env = make_env_from_hyperparams(load_hyperparams(algo, env_id), env_id, seed=seed + 1000, n_envs=1)
    train_env = model.get_env()
    if isinstance(train_env, VecNormalize):
        assert isinstance(eval_env, VecNormalize)
        eval_env.obs_rms = train_env.obs_rms
        eval_env.training = False
        eval_env.norm_reward = False
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    assert mean_return >= threshold, f"{algo} on {env_id} (seed {seed}) reached {mean_return:.1f} < {threshold}"
