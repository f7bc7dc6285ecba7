"""
Cost of NPG's rollouts with this package's rollout step against SB3's own, side by side in one process.

The policies' rollout step (``sb3_npg.common.policies``) skips ``torch.distributions``' argument checks and, for
SB3's diagonal Gaussian, draws the action and its log probability without building the distribution objects.
This times SB3's ``collect_rollouts`` with the shipped NPG entry of each environment, for two models that differ
only in that step: ``ours`` (the shipped ``MlpPolicy``) and ``sb3`` (SB3's ``ActorCriticPolicy``, checks on, as
SB3 builds it). Both collect the same rollouts (the step's results are the same bit for bit); ``train()`` is not
run, so that only the rollouts are timed. The two are measured alternately, ``--rounds`` times ``--steps`` steps
each, in process CPU time with one torch thread, and reported as the cheapest and the median round and their
ratio: the machines are shared and noisy, so only a ratio measured side by side means anything.

    python benchmarks/rollout_step.py                          # HalfCheetah-v5, Hopper-v5, Walker2d-v5
    python benchmarks/rollout_step.py --envs HalfCheetah-v5 --steps 4096 --rounds 2 --results-dir /tmp/step_try
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy

from common.cli import make_parser
from common.entries import resolve_entry
from common.results import RESULTS_DIR, host_description, utc_now
from sb3_npg import NPG
from sb3_npg.zoo import config

ENVS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
STEPS = {"ours": "MlpPolicy", "sb3": ActorCriticPolicy}
PER = 100_000


class RolloutsOnly(NPG):
    """NPG that collects rollouts and never updates: the cost of ``collect_rollouts`` alone."""

    def train(self) -> None:
        return None


def rollout_models(env_id: str) -> dict[str, RolloutsOnly]:
    """One model per rollout step, with the shipped NPG entry of ``env_id``, after one (warm-up) rollout each."""
    entry, _ = resolve_entry("npg", env_id)  # type: ignore[misc]
    kwargs = config.constructor_kwargs(entry)
    kwargs.update(verbose=0, device="cpu")
    models = {}
    for name, policy in STEPS.items():  # each built and run in turn: the seed sets torch's global random state
        env = config.make_env_from_hyperparams(entry, env_id, seed=0)
        models[name] = RolloutsOnly(policy, env, seed=0, **kwargs)
        models[name].learn(models[name].n_steps * models[name].n_envs)
    return models


def measure_env(env_id: str, steps: int, rounds: int) -> dict[str, list[float]]:
    """CPU seconds per 100k steps of each rollout step's rollouts, one entry per round."""
    models = rollout_models(env_id)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.process_time()
            model.learn(steps, reset_num_timesteps=False)
            seconds[name].append((time.process_time() - start) * PER / steps)
    return seconds


def report(results: dict[str, dict[str, list[float]]], steps: int, rounds: int) -> str:
    """The Markdown table of the cheapest and median rounds, and ours over SB3's."""
    lines = [
        "# NPG's rollouts: this package's rollout step against SB3's",
        "",
        f"CPU seconds per 100k steps of `collect_rollouts` with the shipped NPG entry, {rounds} alternating rounds of "
        f"{steps} steps, host {host_description()}, {utc_now()[:10]}: `python benchmarks/rollout_step.py --steps "
        f"{steps} --rounds {rounds}`. Cheapest round (median in parentheses).",
        "",
        "| env | ours s/100k | SB3's s/100k | ours / SB3's |",
        "| --- | ---: | ---: | ---: |",
    ]
    for env_id, seconds in results.items():
        ours, sb3 = seconds["ours"], seconds["sb3"]
        lines.append(
            f"| {env_id} | {min(ours):.2f} ({statistics.median(ours):.2f}) | {min(sb3):.2f} ({statistics.median(sb3):.2f}) "
            f"| {min(ours) / min(sb3):.3f} ({statistics.median(ours) / statistics.median(sb3):.3f}) |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = make_parser(__doc__)
    parser.add_argument("--envs", nargs="+", default=list(ENVS), help="Gymnasium environment ids")
    parser.add_argument("--steps", type=int, default=10_240, help="environment steps of each round")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per rollout step")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR / "cost", help="where rollout_step.md goes")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    th.set_num_threads(1)
    results = {env_id: measure_env(env_id, args.steps, args.rounds) for env_id in args.envs}
    text = report(results, args.steps, args.rounds)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "rollout_step.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
