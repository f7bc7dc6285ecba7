"""
Recurrent (LSTM) policies: the Fisher through time against brute force, padding and the SB3 API of both algorithms
(their constructors are tested with the others' in ``test_constructors.py``).
"""

import glob
import importlib
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

pytest.importorskip("sb3_contrib")

from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples, RNNStates
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize

from sb3_npg import RecurrentKLPPO, RecurrentNPG
from sb3_npg.common.batches import normalize_advantages, weighted_mean
from sb3_npg.common.fisher import fisher_vector_product, gauss_newton_vector_product
from sb3_npg.common.lstm import sequence_distribution, subsample_sequences, unroll_lstm
from sb3_npg.common.parameters import actor_parameters, differentiable_eval_mode, flat_concat
from sb3_npg.common.recurrent_policies import MlpLstmPolicy

ALGOS = [RecurrentNPG, RecurrentKLPPO]
SMALL = dict(n_steps=64, batch_size=32, policy_kwargs=dict(lstm_hidden_size=8, net_arch=[8]))


def _small(algo, **kwargs):
    """Tiny settings (KLPPO with 2 epochs), updated with ``kwargs``."""
    return {**SMALL, **(dict(n_epochs=2) if algo is RecurrentKLPPO else {}), **kwargs}


class NoVelocityCartPole(gym.ObservationWrapper):
    """CartPole with the two velocities zeroed: only a memory of past positions reveals them."""

    def __init__(self, env: gym.Env | None = None):
        super().__init__(env or gym.make("CartPole-v1"))

    def observation(self, observation):
        return observation * np.array([1.0, 0.0, 1.0, 0.0], dtype=observation.dtype)


class NoVelocityPendulum(gym.ObservationWrapper):
    """Pendulum without its angular velocity."""

    def __init__(self):
        super().__init__(gym.make("Pendulum-v1"))
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)

    def observation(self, observation):
        return observation[:2]


def _env(kind: str, n_envs: int = 1, seed: int = 0):
    return make_vec_env(NoVelocityCartPole if kind == "cartpole" else NoVelocityPendulum, n_envs=n_envs, seed=seed)


def _algo_id(algo):
    return algo.__name__


# === The Fisher through time, against brute force ===

N_SEQ, MAX_LEN, OBS_DIM, HIDDEN = 3, 4, 2, 3
# Sequence 0 has an episode boundary at step 2; sequence 1 starts an episode; sequence 2 has one padded step
EPISODE_STARTS = th.tensor([[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=th.float64)
MASK = th.tensor([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=th.float64)
ACTION_SPACES = {"categorical": spaces.Discrete(3), "gaussian": spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)}


@pytest.fixture
def float64_observations(monkeypatch):
    """SB3 casts Box observations to float32 before the features extractor: keep them in float64 here."""
    monkeypatch.setattr("stable_baselines3.common.policies.preprocess_obs", lambda obs, space, normalize_images=True: obs)


def _tiny_policy(kind: str) -> tuple[RecurrentActorCriticPolicy, list[th.nn.Parameter]]:
    th.manual_seed(0)
    policy = MlpLstmPolicy(
        spaces.Box(-1.0, 1.0, (OBS_DIM,), dtype=np.float32),
        ACTION_SPACES[kind],
        lambda _: 1e-3,
        net_arch=[],
        lstm_hidden_size=HIDDEN,
        ortho_init=False,
    )
    actor = actor_parameters(policy)  # found on the float32 policy; .double() keeps the parameter objects
    policy.double()
    with th.no_grad():
        for param in policy.parameters():
            param.copy_(0.7 * th.randn_like(param))
    return policy, actor


def _tiny_batch(seed: int = 1, padding_value: float = 0.0) -> RecurrentRolloutBufferSamples:
    generator = th.Generator().manual_seed(seed)
    observations = th.randn(N_SEQ, MAX_LEN, OBS_DIM, generator=generator, dtype=th.float64)
    observations[MASK == 0] = padding_value
    states = tuple(th.randn(1, N_SEQ, HIDDEN, generator=generator, dtype=th.float64) for _ in range(2))
    zeros = th.zeros(N_SEQ * MAX_LEN, dtype=th.float64)
    return RecurrentRolloutBufferSamples(
        observations=observations.reshape(-1, OBS_DIM),
        actions=zeros,
        old_values=zeros,
        old_log_prob=zeros,
        advantages=zeros,
        returns=zeros,
        lstm_states=RNNStates(states, states),
        episode_starts=EPISODE_STARTS.flatten(),
        mask=MASK.flatten(),
    )


def _step_parameters(policy, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """The distribution's parameters at one step and their Fisher matrix ``M``, written out by hand."""
    if isinstance(policy.action_space, spaces.Discrete):
        logits = policy.action_net(latent).flatten()
        p = th.softmax(logits, dim=0).detach()
        return logits, th.diag(p) - th.outer(p, p)
    mean = policy.action_net(latent).flatten()
    std = policy.log_std.exp()
    inv_var = std.detach().pow(-2)
    return th.cat([mean, std]), th.diag(th.cat([inv_var, 2.0 * inv_var]))


def _brute_force_fisher(policy, actor, batch, respect_episode_starts: bool = True) -> th.Tensor:
    """``sum_t J_t^T M_t J_t / n`` over the real steps, each ``J_t`` through an explicit step-by-step unroll."""
    size = sum(p.numel() for p in actor)
    fisher = th.zeros(size, size, dtype=th.float64)
    observations = batch.observations.reshape(N_SEQ, MAX_LEN, OBS_DIM)
    for seq in range(N_SEQ):
        hidden = (batch.lstm_states.pi[0][:, seq : seq + 1], batch.lstm_states.pi[1][:, seq : seq + 1])
        for step in range(MAX_LEN):
            if respect_episode_starts and EPISODE_STARTS[seq, step]:
                hidden = (th.zeros_like(hidden[0]), th.zeros_like(hidden[1]))
            output, hidden = policy.lstm_actor(observations[seq, step].view(1, 1, OBS_DIM), hidden)
            if not MASK[seq, step]:
                continue
            params, metric = _step_parameters(policy, policy.mlp_extractor.forward_actor(output.view(1, HIDDEN)))
            rows = [flat_concat(th.autograd.grad(value, actor, retain_graph=True, materialize_grads=True)) for value in params]
            jacobian = th.stack(rows)
            fisher += jacobian.T @ metric @ jacobian
    return fisher / MASK.sum()


def _fvp_matrix(policy, actor, batch, use_mask: bool = True) -> th.Tensor:
    distribution = sequence_distribution(policy, batch)
    fvp = fisher_vector_product(actor, distribution, weights=batch.mask if use_mask else None)
    size = sum(p.numel() for p in actor)
    return th.stack([fvp(column) for column in th.eye(size, dtype=th.float64)], dim=1)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_fvp_through_time_matches_brute_force_fisher(kind, float64_observations):
    policy, actor = _tiny_policy(kind)
    assert any(p is policy.lstm_actor.weight_hh_l0 for p in actor)
    assert not any(p is policy.lstm_critic.weight_hh_l0 for p in actor)
    batch = _tiny_batch()
    ours = _fvp_matrix(policy, actor, batch)
    expected = _brute_force_fisher(policy, actor, batch)
    assert th.allclose(ours, expected, rtol=1e-9, atol=1e-11)
    assert th.allclose(ours, ours.T, atol=1e-11)
    # The test sees the episode boundaries and the stored start states: ignoring either changes the Fisher
    assert not th.allclose(ours, _brute_force_fisher(policy, actor, batch, respect_episode_starts=False), atol=1e-6)
    other_states = batch._replace(lstm_states=_tiny_batch(seed=2).lstm_states)
    assert not th.allclose(ours, _fvp_matrix(policy, actor, other_states), atol=1e-6)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_padded_steps_contribute_nothing(kind, float64_observations):
    policy, actor = _tiny_policy(kind)
    batch = _tiny_batch(padding_value=0.0)
    garbage = _tiny_batch(padding_value=5.0)
    garbage = garbage._replace(episode_starts=garbage.episode_starts.clone().index_fill_(0, th.tensor([11]), 1.0))
    assert th.allclose(_fvp_matrix(policy, actor, batch), _fvp_matrix(policy, actor, garbage), rtol=1e-12, atol=1e-14)
    # Without the mask the padded step would count
    assert not th.allclose(_fvp_matrix(policy, actor, batch, use_mask=False), _fvp_matrix(policy, actor, garbage, False))


def test_weights_of_the_gauss_newton_product():
    generator = th.Generator().manual_seed(0)
    theta = th.randn(4, 3, generator=generator, dtype=th.float64, requires_grad=True)
    inputs = th.randn(6, 4, generator=generator, dtype=th.float64)
    outputs = th.tanh(inputs @ theta)
    metric = [lambda u: 2.0 * u]
    vector = th.randn(12, generator=generator, dtype=th.float64)
    unweighted = gauss_newton_vector_product([theta], [outputs], metric)(vector)
    # Equal weights of any size are the plain mean (backward compatible); a 0/1 mask is the mean over the kept rows
    assert th.allclose(gauss_newton_vector_product([theta], [outputs], metric, weights=th.full((6,), 3.0))(vector), unweighted)
    mask = th.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0], dtype=th.float64)
    kept = th.tanh(inputs[mask.bool()] @ theta)
    assert th.allclose(
        gauss_newton_vector_product([theta], [outputs], metric, weights=mask)(vector),
        gauss_newton_vector_product([theta], [kept], metric)(vector),
    )
    with pytest.raises(ValueError, match="weights"):
        gauss_newton_vector_product([theta], [outputs], metric, weights=th.ones(5, dtype=th.float64))


def test_masked_means_and_sequence_subsampling():
    values = th.tensor([1.0, 2.0, 3.0, 100.0], dtype=th.float64)
    mask = th.tensor([1.0, 1.0, 1.0, 0.0], dtype=th.float64)
    assert weighted_mean(values, mask).item() == pytest.approx(2.0)
    assert weighted_mean(values).item() == pytest.approx(26.5)
    normalized = normalize_advantages(values, mask)[:3]
    assert th.allclose(normalized, (values[:3] - 2.0) / (values[:3].std() + 1e-8))
    assert th.allclose(normalize_advantages(values), (values - values.mean()) / (values.std() + 1e-8))

    batch = _tiny_batch()
    half = subsample_sequences(batch, 2)
    assert half.observations.shape == (2 * MAX_LEN, OBS_DIM)
    assert th.equal(half.observations, batch.observations.reshape(N_SEQ, MAX_LEN, OBS_DIM)[[0, 2]].reshape(-1, OBS_DIM))
    assert th.equal(half.mask, MASK[[0, 2]].flatten())
    assert th.equal(half.lstm_states.pi[0], batch.lstm_states.pi[0][:, [0, 2]])
    assert subsample_sequences(batch, 1) is batch


@pytest.mark.parametrize(
    "starts",
    [
        "none",  # no reset: one call
        "first",  # resets at the first step only, as the rollout buffer's sequences: one call
        "inside",  # resets inside sequences and on padding: one call per stretch between resets
    ],
)
@pytest.mark.parametrize("max_len", [1, 6])
def test_unroll_lstm_matches_the_step_by_step_unroll(starts, max_len):
    """Outputs, final states and gradients equal those of sb3-contrib's step-by-step loop, in float64."""
    th.manual_seed(0)
    lstm = th.nn.LSTM(3, 4, num_layers=2).double()
    n_seq = 5
    features = th.randn(n_seq * max_len, 3, dtype=th.float64, requires_grad=True)
    states = tuple(th.randn(2, n_seq, 4, dtype=th.float64, requires_grad=True) for _ in range(2))
    episode_starts = th.zeros(n_seq, max_len, dtype=th.float64)
    if starts == "first":
        episode_starts[[0, 2, 3], 0] = 1.0
    elif starts == "inside":
        episode_starts[0, 0] = 1.0
        episode_starts[1, max_len // 2] = 1.0
        episode_starts[[2, 4], max_len - 1] = 1.0
    episode_starts = episode_starts.flatten()

    results = []
    for unroll in (unroll_lstm, RecurrentActorCriticPolicy._process_sequence):
        output, (hidden, cell) = unroll(features, states, episode_starts, lstm)
        weights = th.linspace(-1.0, 1.0, output.numel(), dtype=th.float64).view_as(output)
        loss = (weights * output).sum() + hidden.sum() + 2.0 * cell.sum()
        grads = th.autograd.grad(loss, [features, *states, *lstm.parameters()])
        results.append((output, hidden, cell, *grads))
    for ours, reference in zip(*results, strict=True):
        assert th.allclose(ours, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_the_algorithms_unroll_in_one_call(algo):
    """The policies behind the aliases are ours (one LSTM call per training sequence), and sb3-contrib's still work."""
    for name in ("MlpLstmPolicy", "CnnLstmPolicy", "MultiInputLstmPolicy"):
        policy_class = algo.policy_aliases[name]
        assert policy_class.__module__ == "sb3_npg.common.recurrent_policies"
        assert policy_class._process_sequence is unroll_lstm
        # models saved by sb3-npg 0.1 name their policy class by sb3_npg.common.recurrent's path
        assert getattr(importlib.import_module("sb3_npg.common.recurrent"), name) is policy_class
    from sb3_contrib.ppo_recurrent.policies import MlpLstmPolicy as ContribMlpLstmPolicy

    model = algo(ContribMlpLstmPolicy, _env("cartpole"), seed=0, device="cpu", **_small(algo))
    model.learn(64)
    assert type(model.policy) is ContribMlpLstmPolicy


@pytest.mark.parametrize("recurrent", [True, False])
def test_differentiable_eval_mode(recurrent):
    """Eval mode; with an LSTM, cuDNN off (it differentiates an LSTM once, and only after a training-mode pass)."""
    kwargs = dict(observation_space=spaces.Box(-1.0, 1.0, (OBS_DIM,), dtype=np.float32), action_space=spaces.Discrete(2))
    policy_class = MlpLstmPolicy if recurrent else ActorCriticPolicy
    policy = policy_class(lr_schedule=lambda _: 1e-3, **kwargs)
    policy.set_training_mode(True)
    with differentiable_eval_mode(policy):
        assert not any(module.training for module in policy.modules())
        assert th.backends.cudnn.enabled == (not recurrent)
    assert th.backends.cudnn.enabled
    assert not any(module.training for module in policy.modules())


# === The algorithms ===


def _filled_model(algo, kind: str = "cartpole", device: str = "cpu", **kwargs):
    model = algo("MlpLstmPolicy", _env(kind, n_envs=2), seed=0, device=device, **_small(algo, **kwargs))
    model.learn(128)
    return model


def _recurrent_gradient_and_fvp(kind: str, device: str):
    """The surrogate's gradient and the masked Fisher-vector product of one RecurrentNPG rollout."""
    model = _filled_model(RecurrentNPG, kind, device=device)
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    assert (rollout.mask == 0).any()  # the batch has padding
    with differentiable_eval_mode(model.policy):  # as in train(): products differentiate the LSTM twice
        distribution = model._batch_distribution(rollout)
        surrogate = model._surrogate(distribution, rollout, rollout.advantages)
        gradient = flat_concat(th.autograd.grad(surrogate, model.actor_params, retain_graph=True))
    return gradient, fisher_vector_product(model.actor_params, distribution, damping=0.1, weights=rollout.mask)


@pytest.mark.parametrize("kind", ["cartpole", "pendulum"])
def test_solve_never_reads_a_tensor_on_the_host(solve_without_host_sync, solve_device, kind):
    """The CG solve on a recurrent policy (products through the unrolled LSTM, padding mask) makes no host call."""
    gradient, fvp = _recurrent_gradient_and_fvp(kind, solve_device)

    result = solve_without_host_sync(fvp, gradient, max_iter=10)
    assert th.isfinite(result.solution).all()
    assert int(result.iterations) >= 1


@pytest.mark.cuda
@pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_cuda(algo):
    model = _filled_model(algo, "pendulum", device="cuda")
    assert all(p.device.type == "cuda" for p in model.policy.parameters())
    assert model.logger.name_to_value["train/update_skipped"] == 0
    obs = model.get_env().reset()
    action, state = model.predict(obs, state=None, episode_start=np.ones((2,), dtype=bool), deterministic=True)
    assert action.shape == (2, 1) and state[0].shape == (1, 2, 8)


def _with_garbage_padding(batch):
    """The same batch with every padded entry replaced by large values."""
    pad = batch.mask == 0
    assert pad.any()

    def spoil(tensor):
        spoiled = tensor.clone()
        spoiled[pad] = 1e3
        return spoiled

    return batch._replace(
        observations=spoil(batch.observations),
        actions=spoil(batch.actions) if batch.actions.dtype.is_floating_point else batch.actions,
        old_values=spoil(batch.old_values),
        old_log_prob=spoil(batch.old_log_prob),
        advantages=spoil(batch.advantages),
        returns=spoil(batch.returns),
    )


@pytest.mark.parametrize("kind", ["cartpole", "pendulum"])
def test_npg_means_ignore_the_padding(kind):
    model = _filled_model(RecurrentNPG, kind)
    rollout = next(iter(model.rollout_buffer.get(batch_size=None)))
    spoiled = _with_garbage_padding(rollout)

    def terms(batch):
        with th.no_grad():
            advantages = normalize_advantages(batch.advantages, model._batch_weights(batch))
            distribution = model._batch_distribution(batch)
            surrogate = model._surrogate(distribution, batch, advantages)
            entropy = model._mean_entropy(distribution, model._batch_weights(batch))
            return [*th.stack([surrogate, model._critic_loss(batch)]).tolist(), entropy]

    assert np.allclose(terms(rollout), terms(spoiled), rtol=1e-5)
    assert not np.allclose(terms(rollout._replace(mask=th.ones_like(rollout.mask))), terms(spoiled), rtol=1e-5)


@pytest.mark.parametrize("kind", ["cartpole", "pendulum"])
def test_klppo_loss_ignores_the_padding(kind):
    model = _filled_model(RecurrentKLPPO, kind)
    # The buffer cuts its sequences at a random index on every get(); without an episode end (Pendulum), a cut at 0
    # leaves no padding, so draw until a batch has some
    batches = (next(iter(model.rollout_buffer.get(batch_size=None))) for _ in range(20))
    batch = next(batch for batch in batches if (batch.mask == 0).any())
    with th.no_grad():  # move the policy away from pi_old, so that the KL terms are not zero
        for param in model.policy.parameters():
            param.add_(0.05 * th.randn_like(param))
        clean = th.stack(list(model.minibatch_loss(batch, clip_range=0.2, clip_range_vf=0.5))).tolist()
        spoiled = th.stack(list(model.minibatch_loss(_with_garbage_padding(batch), 0.2, 0.5))).tolist()
    assert np.allclose(clean, spoiled, rtol=1e-5, atol=1e-8)
    assert clean[2] > 0  # the KL


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
@pytest.mark.parametrize("kind", ["cartpole", "pendulum"])
def test_learn_logs_and_predicts_with_state(algo, kind):
    model = _filled_model(algo, kind)
    assert model.logger.name_to_value["train/update_skipped"] == 0.0
    assert np.isfinite(model.logger.name_to_value["train/kl"])
    env = _env(kind, n_envs=3, seed=5)
    obs = env.reset()
    actions, state = model.predict(obs, deterministic=True)
    assert actions.shape[0] == 3 and state[0].shape == (1, 3, 8)
    starts = np.zeros(3, dtype=bool)
    _, next_state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
    assert not np.allclose(next_state[0], state[0])  # the state carries memory
    # An episode start resets the state: the same as starting from nothing
    reset_actions, reset_state = model.predict(obs, state=state, episode_start=np.ones(3, dtype=bool), deterministic=True)
    assert np.allclose(reset_state[0], state[0]) and np.allclose(reset_actions, actions)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=3)
    assert np.isfinite(mean)
    env.close()


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_save_load_round_trip(algo, tmp_path):
    model = _filled_model(algo)
    observations = np.stack([model.observation_space.sample() for _ in range(4)])
    actions, state = model.predict(observations, deterministic=True)
    actions, _ = model.predict(observations, state=state, episode_start=np.zeros(4), deterministic=True)
    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", env=_env("cartpole", n_envs=2, seed=1), device="cpu")
    _, loaded_state = loaded.predict(observations, deterministic=True)
    loaded_actions, _ = loaded.predict(observations, state=loaded_state, episode_start=np.zeros(4), deterministic=True)
    assert np.array_equal(actions, loaded_actions)
    for key, value in model.get_parameters()["policy"].items():
        assert th.equal(value, loaded.get_parameters()["policy"][key])
    assert type(loaded.rollout_buffer).__name__ == "RecurrentRolloutBuffer"
    loaded.learn(128, reset_num_timesteps=False)
    assert loaded.num_timesteps == 256


class _CountingCallback(BaseCallback):
    def __init__(self):
        super().__init__()
        self.steps = self.rollouts = 0

    def _on_step(self) -> bool:
        self.steps += 1
        return self.steps < 40  # stop in the middle of the second rollout

    def _on_rollout_end(self) -> None:
        self.rollouts += 1


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_callbacks_tensorboard_and_vec_normalize(algo, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = VecNormalize(_env("pendulum", n_envs=2))
    model = algo("MlpLstmPolicy", env, seed=0, device="cpu", tensorboard_log=str(tmp_path), **_small(algo, n_steps=32))
    callback = _CountingCallback()
    model.learn(1_000, callback=callback)
    assert callback.steps == 40 and callback.rollouts == 1 and model.num_timesteps == 80
    assert env.obs_rms.count > 80
    model.learn(128, reset_num_timesteps=False)
    keys = set()
    for event_file in glob.glob(f"{tmp_path}/{algo.__name__}_1/events.out.tfevents.*"):
        accumulator = EventAccumulator(event_file)
        accumulator.Reload()
        keys |= set(accumulator.Tags()["scalars"])
    assert {"train/kl", "train/value_loss", "train/explained_variance"} <= keys
    env.save(str(tmp_path / "vecnormalize.pkl"))
    restored = VecNormalize.load(str(tmp_path / "vecnormalize.pkl"), _env("pendulum"))
    assert np.allclose(restored.obs_rms.mean, env.obs_rms.mean)


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
@pytest.mark.parametrize(
    "policy_kwargs",
    [dict(shared_lstm=True, enable_critic_lstm=False), dict(enable_critic_lstm=False), dict(n_lstm_layers=2)],
    ids=["shared-lstm", "no-critic-lstm", "two-layers"],
)
def test_lstm_layouts_and_ownership(algo, policy_kwargs):
    kwargs = _small(algo, n_steps=32, batch_size=16, policy_kwargs=dict(lstm_hidden_size=4, **policy_kwargs))
    model = algo("MlpLstmPolicy", _env("cartpole"), seed=0, device="cpu", **kwargs)
    actor_ids = {id(p) for p in actor_parameters(model.policy)}
    assert id(model.policy.lstm_actor.weight_hh_l0) in actor_ids
    assert id(model.policy.value_net.weight) not in actor_ids
    if model.policy.lstm_critic is not None:
        assert id(model.policy.lstm_critic.weight_hh_l0) not in actor_ids
    model.learn(64)
    assert model.logger.name_to_value["train/update_skipped"] == 0.0


class _ImageEnv(gym.Env):
    """Images (and, as a Dict, images with a vector) for the CNN and multi-input LSTM policies."""

    def __init__(self, as_dict: bool = False):
        image = spaces.Box(0, 255, (36, 36, 1), dtype=np.uint8)
        self.observation_space = spaces.Dict({"img": image, "vec": spaces.Box(-1, 1, (2,))}) if as_dict else image
        self.action_space = spaces.Discrete(2)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self._t += 1
        return self.observation_space.sample(), float(action), self._t >= 5, False, {}


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
@pytest.mark.parametrize("policy", ["CnnLstmPolicy", "MultiInputLstmPolicy", "gSDE"])
def test_image_dict_observations_and_gsde(algo, policy):
    if policy == "gSDE":
        env, policy, extra = _env("pendulum"), "MlpLstmPolicy", dict(use_sde=True, sde_sample_freq=4)
    else:
        env, extra = make_vec_env(lambda: _ImageEnv(as_dict=policy == "MultiInputLstmPolicy")), {}
    kwargs = _small(algo, n_steps=16, batch_size=8, policy_kwargs=dict(lstm_hidden_size=4, net_arch=[]), **extra)
    model = algo(policy, env, seed=0, device="cpu", **kwargs)
    model.learn(32)
    assert model.logger.name_to_value["train/update_skipped"] == 0.0
    if policy == "MultiInputLstmPolicy":
        assert type(model.rollout_buffer).__name__ == "RecurrentDictRolloutBuffer"


def test_npg_line_search_and_fisher_subsampling():
    model = _filled_model(RecurrentNPG, line_search=True, sub_sampling_factor=2)
    assert model.logger.name_to_value["train/update_skipped"] == 0.0
    assert model.logger.name_to_value["train/kl"] <= model.logger.name_to_value["train/target_kl"]


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_invalid_policy_and_buffer(algo):
    with pytest.raises(ValueError, match="RecurrentActorCriticPolicy"):
        algo(ActorCriticPolicy, _env("cartpole"), n_steps=32, batch_size=16)
    with pytest.raises(ValueError, match="rollout_buffer_class"):
        algo("MlpLstmPolicy", _env("cartpole"), n_steps=32, batch_size=16, rollout_buffer_class=RolloutBuffer)


# === The zoo ===


def test_zoo_knows_the_recurrent_algorithms():
    pytest.importorskip("rl_zoo3")
    import rl_zoo3
    import rl_zoo3.hyperparams_opt

    from sb3_npg.zoo.registry import register

    register()
    assert rl_zoo3.ALGOS["npg_lstm"] is RecurrentNPG
    assert rl_zoo3.ALGOS["klppo_lstm"] is RecurrentKLPPO
    assert rl_zoo3.ALGOS["ppo_lstm"].__name__ == "RecurrentPPO"
    assert {"npg_lstm", "klppo_lstm"} <= set(rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER)


@pytest.mark.parametrize("algo", ["npg_lstm", "klppo_lstm"])
def test_zoo_sampler_builds_a_recurrent_model(algo):
    optuna = pytest.importorskip("optuna")
    from sb3_npg.zoo.config import algorithm_class
    from sb3_npg.zoo.hyperparams_opt import HYPERPARAMS_SAMPLER

    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    kwargs = HYPERPARAMS_SAMPLER[algo](trial, 1, 1, {})
    model = algorithm_class(algo)("MlpLstmPolicy", _env("cartpole"), device="cpu", **kwargs)
    assert model.n_steps == kwargs["n_steps"]


def test_cli_defaults_to_the_shipped_recurrent_files():
    pytest.importorskip("rl_zoo3")
    from sb3_npg.zoo.cli import with_defaults
    from sb3_npg.zoo.config import hyperparams_path

    args = with_defaults("train", ["--algo", "npg_lstm"])
    assert args[args.index("--conf-file") + 1] == str(hyperparams_path("npg_lstm"))
    assert "--conf-file" not in with_defaults("train", ["--algo", "ppo_lstm"])  # the zoo's own file


@pytest.mark.slow
def test_zoo_trains_and_replays_npg_lstm(tmp_path):
    pytest.importorskip("rl_zoo3")
    logs, env_id = tmp_path / "logs", "CartPoleNoVel-v1"
    base = [sys.executable, "-m", "sb3_npg"]
    train = [*base, "train", "--algo", "npg_lstm", "--env", env_id, "-n", "1024", "-f", str(logs), "--seed", "0"]
    subprocess.run([*train, "--num-threads", "1"], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    run_dir = logs / "npg_lstm" / f"{env_id}_1"
    assert (run_dir / f"{env_id}.zip").is_file()
    enjoy = [*base, "enjoy", "--algo", "npg_lstm", "--env", env_id, "-f", str(logs), "--no-render", "-n", "100"]
    result = subprocess.run([*enjoy, "--num-threads", "1"], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert f"Loading {run_dir / f'{env_id}.zip'}" in result.stdout
