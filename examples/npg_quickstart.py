"""
NPG quickstart: train a natural-policy-gradient agent on Pendulum, evaluate it, save it and load it back.

    python examples/npg_quickstart.py                 # 100k steps, a few minutes on a laptop CPU
    python examples/npg_quickstart.py --trpo          # the same with TRPO's line search
    python examples/npg_quickstart.py --timesteps 5000 --output-dir npg_output
"""

import argparse
import os
import tempfile

import gymnasium as gym
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_npg import NPG


def main() -> None:
    parser = argparse.ArgumentParser(description="Train NPG on Pendulum-v1.")
    parser.add_argument("--timesteps", type=int, default=int(os.environ.get("SB3_NPG_EXAMPLE_TIMESTEPS", 100_000)))
    parser.add_argument("--trpo", action="store_true", help="backtrack each step on the measured KL (TRPO)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=None, help="where to save the model (default: a new temporary folder)")
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
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="npg_quickstart_")

    env = make_vec_env("Pendulum-v1", n_envs=2, seed=args.seed)
    model = NPG(
        "MlpPolicy",
        env,
        n_steps=1024,  # 2 envs x 1024 steps = one natural-gradient step per 2048 transitions
        gamma=0.9,
        n_critic_updates=15,
        target_kl=0.01,  # trust-region radius: the KL each step aims at
        line_search=args.trpo,
        use_sde=True,
        sde_sample_freq=4,
        verbose=1,
        seed=args.seed,
    )
    model.learn(total_timesteps=args.timesteps)

    # Deterministic evaluation on a separate environment
    eval_env = make_vec_env("Pendulum-v1", n_envs=1, seed=args.seed + 1000)
    mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=5, deterministic=True)
    print(f"NPG on Pendulum-v1 after {model.num_timesteps} steps: {mean_return:.1f} +/- {std_return:.1f}")

    model_path = os.path.join(output_dir, "npg_pendulum")
    model.save(model_path)
    print(f"Model saved to {model_path}.zip")
    loaded = NPG.load(model_path)
    env_one = gym.make("Pendulum-v1")
    obs, _ = env_one.reset(seed=args.seed)
    action, _ = loaded.predict(obs, deterministic=True)
    print(f"Loaded model's first action: {action}")


if __name__ == "__main__":
    main()
