"""
Save and load: a model trained on a normalized environment, its ``VecNormalize`` statistics, and
training resumed from the saved files. Also shows where the zoo's command line saves its models.

    python examples/load_saved_model.py --timesteps 20000 --output-dir saved_models
"""

import argparse
import os
import tempfile

import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from sb3_npg import NPG


def main() -> None:
    parser = argparse.ArgumentParser(description="Save, load and resume an NPG model with VecNormalize.")
    parser.add_argument("--timesteps", type=int, default=int(os.environ.get("SB3_NPG_EXAMPLE_TIMESTEPS", 20_000)))
    parser.add_argument(
        "--output-dir", default=None, help="where to save the model and its statistics (default: a new temporary folder)"
    )
    parser.add_argument(
        "--num-threads",
        type=int,
        default=1,
        help="torch threads of this process (default 1; 0: torch's default, one per core)",
    )
    args = parser.parse_args()
    # One torch thread: a small network gains nothing from more, and runs that share the cores (other seeds, other
    # processes) slow each other down many times over with torch's default of one thread per core
    if args.num_threads > 0:
        th.set_num_threads(args.num_threads)
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="load_saved_model_")
    os.makedirs(output_dir, exist_ok=True)
    model_path = os.path.join(output_dir, "npg_mountaincar_continuous")
    stats_path = os.path.join(output_dir, "vecnormalize.pkl")

    # Train and save the model and the normalization statistics (both are needed to use it)
    env = VecNormalize(make_vec_env("MountainCarContinuous-v0", n_envs=2, seed=0), gamma=0.99)
    model = NPG("MlpPolicy", env, n_steps=512, use_sde=True, sde_sample_freq=4, verbose=1, seed=0)
    model.learn(args.timesteps)
    model.save(model_path)
    env.save(stats_path)
    print(f"saved {model_path}.zip and {stats_path}")

    # Load for evaluation: statistics frozen, rewards reported unnormalized
    eval_env = VecNormalize.load(stats_path, make_vec_env("MountainCarContinuous-v0", n_envs=1, seed=1000))
    eval_env.training = False
    eval_env.norm_reward = False
    loaded = NPG.load(model_path, env=eval_env, device="cpu")
    mean_return, _ = evaluate_policy(loaded, eval_env, n_eval_episodes=3, deterministic=True)
    print(f"loaded model: mean return {mean_return:.1f} over 3 episodes")

    # Resume training where it stopped: same statistics, timestep counter kept
    train_env = VecNormalize.load(stats_path, make_vec_env("MountainCarContinuous-v0", n_envs=2, seed=1))
    resumed = NPG.load(model_path, env=train_env, verbose=1)
    resumed.learn(args.timesteps, reset_num_timesteps=False)
    print(f"resumed model has seen {resumed.num_timesteps} steps")

    # Models trained with `sb3-npg train --algo npg --env ENV -f logs` are saved by the zoo as
    #   logs/npg/ENV_<run>/ENV.zip            (the model; best_model.zip too when evaluating)
    #   logs/npg/ENV_<run>/ENV/vecnormalize.pkl  (when the entry normalizes)
    #   logs/npg/ENV_<run>/ENV/config.yml     (the hyperparameters used)
    # and load the same way: NPG.load("logs/npg/ENV_1/ENV.zip").


if __name__ == "__main__":
    main()
