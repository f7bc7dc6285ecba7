"""
Custom policy networks with NPG: layer sizes and activation through ``policy_kwargs``, and a custom
features extractor.

NPG's natural-gradient step owns every parameter that feeds the action distribution, found from the
computation graph (not from names): a features extractor shared by actor and critic is moved by the
natural-gradient step only, and the critic then fits its own head. Give the critic its own extractor
(``share_features_extractor=False``) when it should shape its features too.

    python examples/custom_policy.py                    # 10k steps for each of the two models
    python examples/custom_policy.py --timesteps 50000  # enough for both to balance the pole
"""

import argparse
import os

import gymnasium as gym
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_npg import NPG


class SmallEncoder(BaseFeaturesExtractor):
    """
    A two-layer encoder of flat observations.

    :param observation_space: the (flat, Box) observation space
    :param features_dim: size of the features it outputs
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 32):
        super().__init__(observation_space, features_dim)
        n_inputs = int(observation_space.shape[0])
        self.net = nn.Sequential(nn.Linear(n_inputs, 64), nn.Tanh(), nn.Linear(64, features_dim), nn.Tanh())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.net(observations)


def report(name: str, model: NPG) -> None:
    """
    Print the deterministic return of a trained model over a few episodes.

    :param name: what the model is
    :param model: the trained model
    """
    mean_return, std_return = evaluate_policy(model, model.get_env(), n_eval_episodes=5, deterministic=True)
    print(f"{name}: return {mean_return:.1f} +/- {std_return:.1f} after {model.num_timesteps} steps")


def main() -> None:
    parser = argparse.ArgumentParser(description="NPG with custom networks on CartPole-v1.")
    parser.add_argument(
        "--timesteps", type=int, default=int(os.environ.get("SB3_NPG_EXAMPLE_TIMESTEPS", 10_000)), help="steps per model"
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

    # 1. Separate actor and critic MLPs of different sizes, with ReLU
    mlp = NPG(
        "MlpPolicy",
        "CartPole-v1",
        n_steps=1024,
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[128, 128]), activation_fn=nn.ReLU),
        verbose=1,
        seed=0,
    )
    print(mlp.policy)
    mlp.learn(args.timesteps)
    report("separate MLPs", mlp)

    # 2. A custom features extractor, one copy for the actor and one for the critic
    custom = NPG(
        "MlpPolicy",
        "CartPole-v1",
        n_steps=1024,
        policy_kwargs=dict(
            features_extractor_class=SmallEncoder,
            features_extractor_kwargs=dict(features_dim=32),
            share_features_extractor=False,
            net_arch=dict(pi=[32], vf=[32]),
        ),
        verbose=1,
        seed=0,
    )
    n_actor = sum(p.numel() for p in custom.actor_params)
    n_critic = sum(p.numel() for p in custom.critic_params)
    print(f"natural-gradient step: {n_actor} parameters; critic's optimizer: {n_critic} parameters")
    custom.learn(args.timesteps)
    report("custom features extractor", custom)


if __name__ == "__main__":
    main()
