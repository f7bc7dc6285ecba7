"""
rl-baselines3-zoo with NPG and KLPPO (needs ``pip install "sb3-npg[zoo]"``).

From a shell, the usual zoo workflow is::

    sb3-npg train --algo npg --env Pendulum-v1 -f logs -tb runs --seed 0
    sb3-npg enjoy --algo npg --env Pendulum-v1 -f logs --no-render -n 1000
    sb3-npg plot_train -a npg -e Pendulum-v1 -f logs
    # Tuning with Optuna; start the same command on several machines to share the work:
    sb3-npg train --algo npg --env Pendulum-v1 -n 50000 -optimize --n-trials 100 \\
        --storage postgresql://user:password@db-host/optuna --study-name npg-pendulum

The hyperparameters come from the files shipped in ``sb3_npg/zoo/hyperparams/`` unless ``--conf-file``
names another. This script runs the same commands from Python, then builds a model from the shipped
hyperparameters without the zoo's command line.
"""

import argparse
import os
import tempfile

from sb3_npg import NPG
from sb3_npg.zoo.cli import main as sb3_npg_cli
from sb3_npg.zoo.config import build_model, hyperparams_path, load_hyperparams


def main() -> None:
    parser = argparse.ArgumentParser(description="Train and replay NPG through rl-baselines3-zoo.")
    parser.add_argument("--timesteps", type=int, default=int(os.environ.get("SB3_NPG_EXAMPLE_TIMESTEPS", 20_000)))
    parser.add_argument("--output-dir", default=None, help="the zoo's log folder (default: a new temporary folder)")
    args = parser.parse_args()
    log_folder = args.output_dir or tempfile.mkdtemp(prefix="zoo_usage_")

    # Same as: sb3-npg train --algo npg --env CartPole-v1 -n <timesteps> -f <log folder> --seed 0
    sb3_npg_cli(["train", "--algo", "npg", "--env", "CartPole-v1", "-n", str(args.timesteps), "-f", log_folder, "--seed", "0"])
    # Same as: sb3-npg enjoy --algo npg --env CartPole-v1 -f <log folder> --no-render -n 1000
    # (CartPole's episodes last at most 500 steps, so 1000 steps end at least one and print its reward)
    sb3_npg_cli(["enjoy", "--algo", "npg", "--env", "CartPole-v1", "-f", log_folder, "--no-render", "-n", "1000"])
    print(f"the run is saved in {os.path.join(log_folder, 'npg')}")

    # The shipped hyperparameters, read without the zoo
    print(f"NPG's CartPole-v1 entry in {hyperparams_path('npg')}: {load_hyperparams('npg', 'CartPole-v1')}")
    model, n_timesteps = build_model("npg", "CartPole-v1", seed=0)
    assert isinstance(model, NPG)
    print(f"built {type(model).__name__} with n_steps={model.n_steps}; the entry trains for {n_timesteps} steps")


if __name__ == "__main__":
    main()
