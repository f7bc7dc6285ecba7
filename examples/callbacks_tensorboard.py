"""
Callbacks and TensorBoard with NPG: periodic evaluation with early stopping, checkpoints, and a custom
callback that adds a scalar of its own next to NPG's ``train/`` diagnostics. Needs TensorBoard:
``pip install "sb3-npg[extra]"``.

    python examples/callbacks_tensorboard.py --output-dir callbacks_output
    tensorboard --logdir callbacks_output/runs   # train/kl, train/predicted_kl, train/step_size, custom/kl_over_target, ...
"""

import argparse
import math
import os
import tempfile

import torch as th
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
    with the next rollout's statistics, so at the end of a rollout they still hold the last update's values
    (and at the end of training, those of the final update).

    :param verbose: verbosity level
    """

    def __init__(self, verbose: int = 0):
        super().__init__(verbose)
        self.ratios: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self._record_last_update()

    def _on_training_end(self) -> None:
        self._record_last_update()

    def _record_last_update(self) -> None:
        values = self.logger.name_to_value
        if "train/kl" in values and values.get("train/target_kl", 0.0) > 0:
            ratio = values["train/kl"] / values["train/target_kl"]
            self.ratios.append(ratio)
            self.logger.record("custom/kl_over_target", ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description="NPG on CartPole-v1 with callbacks and TensorBoard.")
    parser.add_argument("--timesteps", type=int, default=int(os.environ.get("SB3_NPG_EXAMPLE_TIMESTEPS", 100_000)))
    parser.add_argument(
        "--output-dir", default=None, help="TensorBoard logs, checkpoints and best model (default: a new temporary folder)"
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
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="callbacks_tensorboard_")
    save_dir = os.path.join(output_dir, "models")

    n_envs = 2
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=0)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1000)
    model = NPG(
        "MlpPolicy",
        env,
        n_steps=512,
        batch_size=512,
        gae_lambda=0.98,
        n_critic_updates=20,
        tensorboard_log=os.path.join(output_dir, "runs"),
        verbose=1,
    )

    # Evaluate every 2 rollouts (sooner on a budget below that, so that it evaluates at least once);
    # stop as soon as the deterministic policy averages 475
    evaluation = EvalCallback(
        eval_env,
        eval_freq=max(1, min(1024, args.timesteps // n_envs)),  # in calls of env.step(): 1024 is 2048 transitions
        n_eval_episodes=5,
        best_model_save_path=save_dir,
        log_path=save_dir,
        callback_on_new_best=StopTrainingOnRewardThreshold(reward_threshold=475, verbose=1),
        verbose=1,
    )
    checkpoints = CheckpointCallback(save_freq=5_000, save_path=save_dir, name_prefix="npg_cartpole")
    kl_monitor = KLMonitor()

    model.learn(args.timesteps, callback=CallbackList([evaluation, checkpoints, kl_monitor]), tb_log_name="npg_cartpole")
    n_evaluations = len(evaluation.evaluations_timesteps)
    if n_evaluations > 0 and math.isfinite(evaluation.best_mean_reward):
        print(f"best evaluation: {evaluation.best_mean_reward:.1f} (mean return, best of {n_evaluations} evaluations)")
    else:
        print("no evaluation ran")
    print("measured KL / target per update: " + (", ".join(f"{ratio:.2f}" for ratio in kl_monitor.ratios) or "no update"))
    print(f"TensorBoard logs in {model.logger.dir}; best model and checkpoints in {save_dir}")


if __name__ == "__main__":
    main()
