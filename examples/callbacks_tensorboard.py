"""
Callbacks and TensorBoard with NPG: periodic evaluation with early stopping, checkpoints, and a custom
callback that adds a scalar of its own next to NPG's ``train/`` diagnostics.

    python examples/callbacks_tensorboard.py
    tensorboard --logdir runs/   # train/kl, train/predicted_kl, train/step_size, custom/kl_over_target, ...
"""

import argparse
import os

from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env

from sb3_npg import NPG


class KLMonitor(BaseCallback):
    """
    Log how the measured KL of each natural-gradient step compares with the trust-region radius.

    NPG records ``train/kl`` and ``train/target_kl`` at the end of ``train()``; they are written out
    with the next rollout's statistics, so at the end of a rollout they still hold the last update's values.

    :param verbose: verbosity level
    """

    def __init__(self, verbose: int = 0):
        super().__init__(verbose)
        self.ratios: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        values = self.logger.name_to_value
        if "train/kl" in values and values.get("train/target_kl", 0.0) > 0:
            ratio = values["train/kl"] / values["train/target_kl"]
            self.ratios.append(ratio)
            self.logger.record("custom/kl_over_target", ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description="NPG on CartPole-v1 with callbacks and TensorBoard.")
    parser.add_argument("--timesteps", type=int, default=int(os.environ.get("SB3_NPG_EXAMPLE_TIMESTEPS", 100_000)))
    parser.add_argument("--logdir", default="runs", help="TensorBoard folder")
    parser.add_argument("--save-dir", default="logs/callbacks_example", help="checkpoints and best model")
    args = parser.parse_args()

    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1000)
    model = NPG(
        "MlpPolicy", env, n_steps=512, batch_size=512, gae_lambda=0.98, n_critic_updates=20, tensorboard_log=args.logdir
    )

    # Evaluate every 2 rollouts; stop as soon as the deterministic policy averages 475
    evaluation = EvalCallback(
        eval_env,
        eval_freq=1024,  # in calls of env.step(), i.e. 2048 transitions with 2 envs
        n_eval_episodes=5,
        best_model_save_path=args.save_dir,
        log_path=args.save_dir,
        callback_on_new_best=StopTrainingOnRewardThreshold(reward_threshold=475, verbose=1),
        verbose=1,
    )
    checkpoints = CheckpointCallback(save_freq=5_000, save_path=args.save_dir, name_prefix="npg_cartpole")
    kl_monitor = KLMonitor()

    model.learn(args.timesteps, callback=CallbackList([evaluation, checkpoints, kl_monitor]), tb_log_name="npg_cartpole")
    print(f"best evaluation: {evaluation.best_mean_reward:.1f}; measured KL / target per update: {kl_monitor.ratios}")
    print(f"TensorBoard logs in {model.logger.dir}")


if __name__ == "__main__":
    main()
