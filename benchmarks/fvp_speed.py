"""
Speed of one Fisher-vector product against sb3-contrib TRPO's Hessian-vector product and against one
forward+backward pass of the surrogate, and of a whole ``train()`` of NPG against TRPO's.

All timings of a comparison are taken alternately in one process on the same batch (HalfCheetah-v5
observations, SB3's 64x64 MLP policy) and reported as medians and ratios: the machines are shared and
noisy, so only ratios measured side by side mean anything.

The recurrent measurement times one Fisher-vector product of ``RecurrentNPG`` (sb3-contrib's LSTM policy
with the shipped ``npg_lstm`` CartPoleNoVel-v1 architecture, the padding mask as weights) against one
forward+backward pass of its surrogate, on the padded sequences of a real rollout, as ``train()`` sees it,
and that forward+backward pass with our LSTM unroll against sb3-contrib's step-by-step one.

    python benchmarks/fvp_speed.py                      # CPU, one torch thread, writes benchmarks/results/
    python benchmarks/fvp_speed.py --device cuda --tag cuda
    python benchmarks/fvp_speed.py --only recurrent     # the recurrent policy only (fvp_speed_recurrent_<tag>.*)
"""

import argparse
import contextlib
import copy
import json
import platform
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from sb3_contrib import TRPO
from stable_baselines3.common.distributions import kl_divergence
from stable_baselines3.common.logger import configure

from sb3_npg import NPG
from sb3_npg.common.fisher import fisher_vector_product
from sb3_npg.common.mlp_products import actor_fisher_vector_product
from sb3_npg.common.parameters import flat_concat

RESULTS = Path(__file__).parent / "results"


def _sync(device: th.device) -> None:
    if device.type == "cuda":
        th.cuda.synchronize()


def _clock(device: th.device):
    """
    CPU time of this process on the CPU with one torch thread, wall time on CUDA.

    With a single torch thread all the work runs on this process's thread, so its CPU time measures
    the work itself and is barely disturbed by other processes on a shared machine; CUDA work runs
    off the host, so it needs synchronised wall time.
    """
    return time.perf_counter if device.type == "cuda" or th.get_num_threads() > 1 else time.process_time


def _median_ms(samples: list[float]) -> float:
    return 1000.0 * statistics.median(samples)


def _setting(env_id: str, device: th.device, threads: int, repeats: int, device_name: str | None = None) -> dict:
    """The head of a results file: what was measured, on what, with which clock, how many times."""
    setting: dict = {"env": env_id, "device": str(device)}
    if device_name is not None:
        setting["device_name"] = device_name
    return {**setting, "torch": th.__version__, "threads": threads, "clock": _clock(device).__name__, "repeats": repeats}


def _write_results(stem: str, result: dict, lines: list[str]) -> None:
    """``<stem>.json`` (the result) and ``<stem>.md`` (the lines) in the results folder."""
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))


def collect_batch(env_id: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Observations and actions of a random policy: the states a first rollout visits."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations, actions = [], []
    for _ in range(n):
        action = env.action_space.sample()
        observations.append(obs)
        actions.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    return np.asarray(observations, dtype=np.float32), np.asarray(actions, dtype=np.float32)


def product_timings(env_id: str, n: int, device: th.device, repeats: int, cg_damping: float = 0.1) -> dict:
    """Median time of one product (ours, TRPO's) and of one forward+backward pass, measured alternately."""
    trpo = TRPO("MlpPolicy", env_id, device=device, seed=0, cg_damping=cg_damping)
    npg = NPG("MlpPolicy", env_id, device=device, seed=0, cg_damping=cg_damping)
    npg.policy.load_state_dict(trpo.policy.state_dict())
    obs_np, actions_np = collect_batch(env_id, n)
    obs = th.as_tensor(obs_np, device=device)
    actions = th.as_tensor(actions_np, device=device)
    advantages = th.randn(n, device=device)
    with th.no_grad():
        old_log_prob = npg.policy.get_distribution(obs).log_prob(actions)

    def surrogate_of(policy):
        distribution = policy.get_distribution(obs)
        return distribution, (advantages * th.exp(distribution.log_prob(actions) - old_log_prob)).mean()

    # TRPO's product, built exactly as TRPO.train() builds it
    with th.no_grad():
        old_distribution = copy.copy(trpo.policy.get_distribution(obs))
    trpo_distribution, trpo_objective = surrogate_of(trpo.policy)
    kl = kl_divergence(trpo_distribution, old_distribution).mean()
    actor_params, _, grad_kl, _ = trpo._compute_actor_grad(kl, trpo_objective)

    def trpo_product(v):
        return trpo.hessian_vector_product(actor_params, grad_kl, v)

    # Ours: the graph of J^T w is built once per update, then reused by every product
    npg_distribution, _ = surrogate_of(npg.policy)
    clock = _clock(device)
    start = clock()
    our_product = fisher_vector_product(npg.actor_params, npg_distribution, damping=cg_damping)
    _sync(device)
    build_time = clock() - start
    # The same product by hand (what NPG uses for SB3's MLP policies): one forward pass to build, no graph
    start = clock()
    hand_product = actor_fisher_vector_product(npg.policy, obs, npg.actor_params, cg_damping)
    _sync(device)
    hand_build_time = clock() - start
    assert hand_product is not None, "SB3's MLP policy should take the hand-written product"

    def forward_backward():
        _, objective = surrogate_of(npg.policy)
        return flat_concat(th.autograd.grad(objective, npg.actor_params))

    vector = th.randn(sum(p.numel() for p in npg.actor_params), device=device)
    # Same matrix up to TRPO's convention: its KL is averaged over the action dimensions, ours is summed
    action_dim = actions.shape[1]
    trpo_fisher_v = action_dim * (trpo_product(vector) - cg_damping * vector)
    assert th.allclose(our_product(vector) - cg_damping * vector, trpo_fisher_v, rtol=1e-3, atol=1e-4), "products differ"
    assert th.allclose(hand_product(vector), our_product(vector), rtol=1e-4, atol=1e-5), "hand-written product differs"

    candidates = {
        "ours": lambda: our_product(vector),
        "hand": lambda: hand_product(vector),
        "trpo_hvp": lambda: trpo_product(vector),
        "forward_backward": forward_backward,
    }
    medians = _time_alternately(candidates, device, repeats)
    return {
        "n": n,
        "ours_ms": medians["ours"],
        "trpo_hvp_ms": medians["trpo_hvp"],
        "forward_backward_ms": medians["forward_backward"],
        "ours_build_ms": 1000.0 * build_time,
        "hand_ms": medians["hand"],
        "hand_build_ms": 1000.0 * hand_build_time,
        "speedup_vs_trpo": medians["trpo_hvp"] / medians["ours"],
        "hand_speedup_vs_ours": medians["ours"] / medians["hand"],
        "hand_speedup_vs_trpo": medians["trpo_hvp"] / medians["hand"],
        "ratio_to_forward_backward": medians["ours"] / medians["forward_backward"],
    }


def _time_alternately(candidates: dict, device: th.device, repeats: int) -> dict[str, float]:
    """Median time (ms) of each candidate, called in turn ``repeats`` times after 3 warm-up rounds."""
    clock = _clock(device)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(3):
        for fn in candidates.values():
            fn()
    for _ in range(repeats):
        for name, fn in candidates.items():
            _sync(device)
            start = clock()
            fn()
            _sync(device)
            samples[name].append(clock() - start)
    return {name: _median_ms(values) for name, values in samples.items()}


@contextlib.contextmanager
def _step_by_step_unroll(policy: th.nn.Module) -> Iterator[None]:
    """Inside the block, the recurrent policy unrolls its LSTMs with sb3-contrib's step-by-step loop."""
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    policy._process_sequence = RecurrentActorCriticPolicy._process_sequence  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        del policy._process_sequence


def recurrent_product_timings(env_id: str, n_envs: int, n_steps: int, device: th.device, repeats: int) -> dict:
    """Median time of one FVP through the unrolled LSTM and of one forward+backward pass, on one real rollout."""
    from sb3_npg import RecurrentNPG
    from sb3_npg.common.batches import normalize_advantages
    from sb3_npg.zoo import config

    entry = config.load_hyperparams("npg_lstm", env_id)
    env = config.make_env_from_hyperparams(entry, env_id, seed=0, n_envs=n_envs)
    policy_kwargs = config.constructor_kwargs(entry)["policy_kwargs"]
    model = RecurrentNPG("MlpLstmPolicy", env, n_steps=n_steps, policy_kwargs=policy_kwargs, device=device, seed=0)
    model.learn(n_steps * n_envs)  # one rollout fills the buffer
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    advantages = normalize_advantages(rollout.advantages, rollout.mask)
    clock = _clock(device)
    start = clock()
    product = fisher_vector_product(
        model.actor_params, model._batch_distribution(rollout), damping=model.cg_damping, weights=rollout.mask
    )
    _sync(device)
    build_time = clock() - start

    def forward_backward():
        surrogate = model._surrogate(model._batch_distribution(rollout), rollout, advantages)
        return flat_concat(th.autograd.grad(surrogate, model.actor_params))

    def forward_backward_step_by_step():
        with _step_by_step_unroll(model.policy):
            return forward_backward()

    vector = th.randn(sum(p.numel() for p in model.actor_params), device=device)
    medians = _time_alternately(
        {"ours": lambda: product(vector), "forward_backward": forward_backward, "step_by_step": forward_backward_step_by_step},
        device,
        repeats,
    )
    env.close()
    return {
        "n_envs": n_envs,
        "n_steps": n_steps,
        "n": n_envs * n_steps,
        "n_sequences": int(rollout.lstm_states.pi[0].shape[1]),
        "padded_n": int(rollout.mask.numel()),
        "ours_ms": medians["ours"],
        "forward_backward_ms": medians["forward_backward"],
        "ours_build_ms": 1000.0 * build_time,
        "ratio_to_forward_backward": medians["ours"] / medians["forward_backward"],
        "step_by_step_forward_backward_ms": medians["step_by_step"],
        "unroll_speedup": medians["step_by_step"] / medians["forward_backward"],
    }


def recurrent_train_timings(env_id: str, device: th.device, repeats: int) -> dict:
    """Median time of one ``train()`` of the shipped ``npg_lstm`` entry with our LSTM unroll and with sb3-contrib's."""
    from sb3_npg import RecurrentNPG
    from sb3_npg.zoo import config

    entry = config.load_hyperparams("npg_lstm", env_id)
    n_envs = int(entry.get("n_envs", 1))
    env = config.make_env_from_hyperparams(entry, env_id, seed=0, n_envs=n_envs)
    kwargs = config.constructor_kwargs(entry)
    model = RecurrentNPG(entry["policy"], env, device=device, seed=0, **kwargs)
    model.learn(model.n_steps * n_envs)  # one rollout fills the buffer
    start_state = copy.deepcopy(model.policy.state_dict())

    def train(step_by_step: bool) -> None:
        model.policy.load_state_dict(start_state)
        with _step_by_step_unroll(model.policy) if step_by_step else contextlib.nullcontext():
            model.train()

    medians = _time_alternately({"ours": lambda: train(False), "step_by_step": lambda: train(True)}, device, repeats)
    env.close()
    return {
        "n_envs": n_envs,
        "n_steps": model.n_steps,
        "ours_ms": medians["ours"],
        "step_by_step_ms": medians["step_by_step"],
        "speedup": medians["step_by_step"] / medians["ours"],
    }


def write_recurrent_results(
    rows: list[dict], train_row: dict, env_id: str, device: th.device, args: argparse.Namespace
) -> None:
    """``fvp_speed_recurrent_<tag>.json`` and ``.md``."""
    result = {**_setting(env_id, device, args.threads, args.recurrent_repeats), "products": rows, "train": train_row}
    lines = [
        f"# FVP speed on a recurrent policy ({env_id}, LSTM 64 + 64-unit heads as in the shipped npg_lstm entry,"
        f" device {device}, torch {th.__version__}, {args.threads} thread(s), clock {_clock(device).__name__})",
        "",
        "One Fisher-vector product through the unrolled LSTM (padding masked) against one forward+backward pass",
        "of the surrogate over the same padded sequences of one rollout (medians, taken alternately). The last",
        "two columns time that forward+backward pass with sb3-contrib's own unroll, which calls the LSTM once",
        "per time step when a sequence starts an episode, against ours, which calls it once per sequence batch.",
        "",
        "| envs x steps | sequences | padded batch | ours (ms) | fwd+bwd (ms) | ours / fwd+bwd"
        " | fwd+bwd, step-by-step unroll (ms) | unroll speed-up |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['n_envs']} x {row['n_steps']} | {row['n_sequences']} | {row['padded_n']} | {row['ours_ms']:.2f}"
            f" | {row['forward_backward_ms']:.2f} | {row['ratio_to_forward_backward']:.2f}x"
            f" | {row['step_by_step_forward_backward_ms']:.2f} | {row['unroll_speedup']:.1f}x |"
        )
    lines += [
        "",
        f"One whole `train()` of the shipped entry ({train_row['n_envs']} x {train_row['n_steps']} steps: gradient,"
        " CG, step, critic fit), median of"
        f" {args.recurrent_repeats}: {train_row['ours_ms']:.0f} ms with our unroll, {train_row['step_by_step_ms']:.0f} ms"
        f" with sb3-contrib's ({train_row['speedup']:.1f}x).",
        "",
    ]
    _write_results(f"fvp_speed_recurrent_{args.tag}", result, lines)


def train_timings(env_id: str, n: int, device: th.device, repeats: int, cg_max_steps: int = 10) -> dict:
    """Median time of one ``train()`` of NPG and of TRPO on the same rollout, same CG iterations, one critic pass."""
    common: dict[str, Any] = dict(
        n_steps=n, batch_size=n // 16, n_critic_updates=1, cg_max_steps=cg_max_steps, device=device, seed=0
    )
    npg = NPG("MlpPolicy", env_id, **common)
    trpo = TRPO("MlpPolicy", env_id, **common)
    trpo.policy.load_state_dict(npg.policy.state_dict())
    for model in (npg, trpo):
        model.set_logger(configure(None, []))
    npg.learn(n)  # one rollout (and one update) fills the buffer
    for name in ("observations", "actions", "rewards", "advantages", "returns", "episode_starts", "log_probs", "values"):
        setattr(trpo.rollout_buffer, name, getattr(npg.rollout_buffer, name).copy())
    trpo.rollout_buffer.full = True
    trpo.rollout_buffer.generator_ready = npg.rollout_buffer.generator_ready

    snapshots = {
        name: (model.policy.state_dict(), model.policy.optimizer.state_dict())
        for name, model in (("npg", npg), ("trpo", trpo))
    }
    th.manual_seed(0)
    samples: dict[str, list[float]] = {"npg": [], "trpo": []}
    clock = _clock(device)
    for repeat in range(repeats + 2):
        for name, model in (("npg", npg), ("trpo", trpo)):
            policy_state, optimizer_state = snapshots[name]
            model.policy.load_state_dict(policy_state)
            model.policy.optimizer.load_state_dict(optimizer_state)
            _sync(device)
            start = clock()
            model.train()
            _sync(device)
            if repeat >= 2:  # the first two are warm-up
                samples[name].append(clock() - start)
    return {
        "n": n,
        "npg_train_ms": _median_ms(samples["npg"]),
        "trpo_train_ms": _median_ms(samples["trpo"]),
        "speedup_vs_trpo": statistics.median(samples["trpo"]) / statistics.median(samples["npg"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 8192])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--train-size", type=int, default=2048)
    parser.add_argument("--train-repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default="cpu", help="suffix of the result files")
    parser.add_argument("--only", choices=["mlp", "recurrent"], default=None, help="run one of the two measurements")
    parser.add_argument("--recurrent-env", default="CartPoleNoVel-v1", help="a task with an npg_lstm entry")
    parser.add_argument("--recurrent-steps", type=int, nargs="+", default=[32, 128], help="steps per env (8 envs)")
    parser.add_argument("--recurrent-repeats", type=int, default=20)
    args = parser.parse_args()

    th.set_num_threads(args.threads)
    device = th.device(args.device)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.only != "mlp":
        rows = []
        for n_steps in args.recurrent_steps:
            row = recurrent_product_timings(args.recurrent_env, 8, n_steps, device, args.recurrent_repeats)
            rows.append(row)
            print(
                f"LSTM 8x{n_steps} ({row['n_sequences']} sequences, padded to {row['padded_n']}): ours {row['ours_ms']:.2f} ms"
                f"  fwd+bwd {row['forward_backward_ms']:.2f} ms  -> {row['ratio_to_forward_backward']:.2f}x fwd+bwd",
                flush=True,
            )
        train_row = recurrent_train_timings(args.recurrent_env, device, args.recurrent_repeats)
        print(
            f"LSTM train(): ours {train_row['ours_ms']:.0f} ms  sb3-contrib's unroll {train_row['step_by_step_ms']:.0f} ms"
            f"  -> {train_row['speedup']:.1f}x"
        )
        write_recurrent_results(rows, train_row, args.recurrent_env, device, args)
    if args.only == "recurrent":
        return
    products = []
    for n in args.sizes:
        row = product_timings(args.env, n, device, args.repeats)
        products.append(row)
        print(
            f"N={n:5d}  ours {row['ours_ms']:7.2f} ms  TRPO HVP {row['trpo_hvp_ms']:7.2f} ms"
            f"  fwd+bwd {row['forward_backward_ms']:7.2f} ms"
            f"  -> {row['speedup_vs_trpo']:.2f}x faster than TRPO, {row['ratio_to_forward_backward']:.2f}x fwd+bwd;"
            f" by hand {row['hand_ms']:7.2f} ms, {row['hand_speedup_vs_ours']:.2f}x faster than autograd's",
            flush=True,
        )
    train = train_timings(args.env, args.train_size, device, args.train_repeats)
    print(
        f"train() N={train['n']}: NPG {train['npg_train_ms']:.1f} ms  TRPO {train['trpo_train_ms']:.1f} ms"
        f"  -> {train['speedup_vs_trpo']:.2f}x faster",
        flush=True,
    )

    device_name = th.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    result = {**_setting(args.env, device, args.threads, args.repeats, device_name), "products": products, "train": train}
    lines = [
        f"# FVP speed ({args.env}, 64x64 MLP, device {device}, torch {th.__version__}, {args.threads} thread(s),"
        f" clock {_clock(device).__name__})",
        "",
        "`ours`: the product by autograd (any network); `by hand`: the hand-written product of SB3's MLP policies",
        "(`sb3_npg.common.mlp_products`), which NPG uses for them. Medians of alternate calls.",
        "",
        "| N | ours (ms) | by hand (ms) | TRPO HVP (ms) | fwd+bwd (ms) | ours vs TRPO | by hand vs ours | by hand vs TRPO"
        " | ours / fwd+bwd |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in products:
        lines.append(
            f"| {row['n']} | {row['ours_ms']:.2f} | {row['hand_ms']:.2f} | {row['trpo_hvp_ms']:.2f}"
            f" | {row['forward_backward_ms']:.2f} | {row['speedup_vs_trpo']:.2f}x faster"
            f" | {row['hand_speedup_vs_ours']:.2f}x faster | {row['hand_speedup_vs_trpo']:.2f}x faster"
            f" | {row['ratio_to_forward_backward']:.2f}x |"
        )
    lines += [
        "",
        f"`train()` on N={train['n']} (same rollout, {10} CG iterations, one critic pass): NPG {train['npg_train_ms']:.1f} ms,"
        f" TRPO {train['trpo_train_ms']:.1f} ms: NPG {train['speedup_vs_trpo']:.2f}x faster.",
        "",
    ]
    _write_results(f"fvp_speed_{args.tag}", result, lines)


if __name__ == "__main__":
    main()
