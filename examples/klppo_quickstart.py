"""
KLPPO quickstart: PPO with an adaptive KL penalty instead of ratio clipping, on CartPole.

    python examples/klppo_quickstart.py
    python examples/klppo_quickstart.py --kl-adaptation adaptive   # the PPO paper's beta rule
    python examples/klppo_quickstart.py --timesteps 5000 --output-dir klppo_output
"""

import argparse
import os
import tempfile

import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_npg import KLPPO


def main() -> None:
    parser = argparse.ArgumentParser(description="Train KLPPO on CartPole-v1.")
    parser.add_argument("--timesteps", type=int, default=int(os.environ.get("SB3_NPG_EXAMPLE_TIMESTEPS", 100_000)))
    parser.add_argument("--kl-adaptation", default=None, help="how beta adapts (default: KLPPO's default)")
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
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="klppo_quickstart_")

    env = make_vec_env("CartPole-v1", n_envs=8, seed=args.seed)
    extra = {} if args.kl_adaptation is None else {"kl_adaptation": args.kl_adaptation}
    model = KLPPO(
        "MlpPolicy",
        env,
        n_steps=256,
        batch_size=256,
        n_epochs=10,
        learning_rate=1e-3,
        target_kl=0.01,  # the KL per update that the penalty steers towards
        kl_coef=1.0,  # initial penalty coefficient beta
        verbose=1,
        seed=args.seed,
        **extra,
    )
    model.learn(total_timesteps=args.timesteps)
    print(f"Penalty coefficient after training: beta = {model.kl_coef:.3g}")

    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=args.seed + 1000)
    mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=5, deterministic=True)
    print(f"KLPPO on CartPole-v1 after {model.num_timesteps} steps: {mean_return:.1f} +/- {std_return:.1f}")
    model_path = os.path.join(output_dir, "klppo_cartpole")
    model.save(model_path)
    print(f"Model saved to {model_path}.zip")


if __name__ == "__main__":
    main()
