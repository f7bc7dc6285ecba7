"""
NPG set up to sb3-contrib TRPO's semantics takes TRPO's update, on the same batch and weights.

TRPO measures the KL as the torch KL averaged over every element of its per-state result: the ``d``
dimensions of a ``Box`` or ``MultiBinary`` action (``d = 1`` for ``Discrete`` and ``MultiDiscrete``, whose
KL is already joint). Its Hessian is then ``F / d``, it solves ``(F / d + lambda I) s = g`` and sizes the
step by the damped quadratic ``s^T (F / d + lambda I) s``. That is NPG with the radius ``d * delta``, the
damping ``d * lambda`` and ``damped_step_size=True`` (conjugate gradient is invariant to scaling the system).

The other differences, which these tests neutralise, are not hyperparameters:

- TRPO starts conjugate gradient from ``1e-4 * randn`` instead of zero (patched to zero here);
- its line search measures ``KL(pi_new || pi_old)``, NPG ``KL(pi_old || pi_new)``, and accepts ``kl < delta``
  where NPG accepts ``<=``. The two directions agree to second order, but where the line search decides
  they may not (in the backtracking test below NPG would take the full step that TRPO shrinks), so NPG
  is given TRPO's direction here;
- with ``sub_sampling_factor > 1`` TRPO sub-samples the gradient, the advantage normalisation and the
  line search as well, NPG only the Fisher (these tests use the whole batch);
- TRPO finds the actor's parameters by name (no ``"value"`` in it), NPG by the autograd graph: the same
  parameters for SB3's policies.
"""

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.logger import configure
from stable_baselines3.common.torch_layers import FlattenExtractor

from sb3_npg import NPG
from sb3_npg.common.kl import policy_kl
from sb3_npg.npg import npg as npg_module

sb3_contrib = pytest.importorskip("sb3_contrib")

N_STATES = 256
OBS_DIM = 17  # HalfCheetah's observation size


class _SpacesEnv(gym.Env):
    """An environment that only provides its spaces: the tests fill the rollout buffers themselves."""

    def __init__(self, action_space: spaces.Space) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(OBS_DIM, np.float32), {}

    def step(self, action):
        return np.zeros(OBS_DIM, np.float32), 0.0, False, False, {}


class _Float64Flatten(FlattenExtractor):
    """SB3 casts observations to float32 before the features extractor: cast them to the default dtype."""

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return super().forward(observations.to(th.get_default_dtype()))


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    dtype = th.get_default_dtype()
    th.set_default_dtype(th.float64)
    yield
    th.set_default_dtype(dtype)


# (action space, d: the number of elements TRPO's KL is averaged over)
ACTION_SPACES = {
    "box6": (spaces.Box(-1.0, 1.0, (6,), np.float32), 6),  # HalfCheetah's action size
    "discrete": (spaces.Discrete(4), 1),
    "multidiscrete": (spaces.MultiDiscrete([3, 2]), 1),
    "multibinary": (spaces.MultiBinary(3), 3),
}


def _fill_buffer(model, observations, actions, log_probs, advantages, returns, values) -> None:
    """Put the same float64 rollout into a model's buffer (as ``collect_rollouts`` would, one environment)."""
    buffer = model.rollout_buffer
    buffer.reset()
    buffer.observations = observations[:, None].copy()
    buffer.actions = actions.reshape(N_STATES, 1, -1).copy()
    buffer.log_probs = log_probs[:, None].copy()
    buffer.advantages = advantages[:, None].copy()
    buffer.returns = returns[:, None].copy()
    buffer.values = values[:, None].copy()
    buffer.episode_starts = np.zeros((N_STATES, 1))
    buffer.pos, buffer.full = N_STATES, True


def _make_pair(action_key: str, trpo_kwargs: dict, npg_kwargs: dict, explore: bool = False):
    """TRPO and NPG on the same float64 weights and the same rollout."""
    action_space, _ = ACTION_SPACES[action_key]
    common = dict(n_steps=N_STATES, batch_size=64, n_critic_updates=2, seed=0, device="cpu")
    common["policy_kwargs"] = dict(features_extractor_class=_Float64Flatten)
    trpo = sb3_contrib.TRPO("MlpPolicy", _SpacesEnv(action_space), **common, **trpo_kwargs)
    npg = NPG("MlpPolicy", _SpacesEnv(action_space), line_search=True, **common, **npg_kwargs)
    npg.policy.load_state_dict(trpo.policy.state_dict())
    for model in (trpo, npg):
        model.set_logger(configure(None, []))

    rng = np.random.default_rng(1)
    observations = rng.normal(size=(N_STATES, OBS_DIM))
    with th.no_grad():
        distribution = trpo.policy.get_distribution(th.as_tensor(observations))
        actions = distribution.sample()
        log_probs = distribution.log_prob(actions).numpy()
    actions = actions.double().numpy()
    # Advantages that depend on the actions, so that the gradient has a direction worth following; with
    # ``explore`` they reward actions far from the mean, which widens a Gaussian: its KL then outgrows the
    # quadratic model, and the line search has to backtrack
    flat_actions = actions.reshape(N_STATES, -1)
    advantages = flat_actions @ rng.normal(size=flat_actions.shape[1]) + 0.3 * rng.normal(size=N_STATES)
    if explore:
        advantages += 3.0 * ((flat_actions - flat_actions.mean(axis=0)) ** 2).sum(axis=1)
    returns, values = rng.normal(size=N_STATES), rng.normal(size=N_STATES)
    for model in (trpo, npg):
        _fill_buffer(model, observations, actions, log_probs, advantages, returns, values)
    return trpo, npg


def _reverse_kl(old_distribution, new_distribution, actions=None, log_prob_old=None):
    """TRPO's line-search KL direction, ``KL(pi_new || pi_old)``, summed over action dimensions like NPG's."""
    return policy_kl(new_distribution, old_distribution, estimator="exact")


def _train_both(trpo, npg, monkeypatch) -> tuple[dict, dict, dict, dict]:
    """
    One ``train()`` of each from the same weights.

    :return: the weights before, TRPO's and NPG's weights after, and what NPG logged
    """
    before = {name: value.clone() for name, value in trpo.policy.state_dict().items()}
    logged: dict = {}
    record = npg.logger.record

    def record_and_keep(key, value, exclude=None):
        logged[key] = value
        record(key, value, exclude)

    np.random.seed(0)  # the buffers' minibatch order
    with monkeypatch.context() as patch:
        # sb3-contrib's conjugate gradient starts from ``1e-4 * randn_like(b)``: start it from zero, as NPG's
        patch.setattr(th, "randn_like", th.zeros_like)
        trpo.train()
    np.random.seed(0)
    with monkeypatch.context() as patch:
        patch.setattr(npg_module, "policy_kl", _reverse_kl)
        patch.setattr(npg.logger, "record", record_and_keep)
        npg.train()
    return before, trpo.policy.state_dict(), npg.policy.state_dict(), logged


def _update_gap(before: dict, reference: dict, other: dict, actor_only: bool = False) -> float:
    """``max |update_other - update_reference| / max |update_reference|`` (over the actor's weights, or all)."""
    names = [name for name in before if not (actor_only and "value" in name)]
    gap = max((other[name] - reference[name]).abs().max().item() for name in names)
    size = max((reference[name] - before[name]).abs().max().item() for name in names)
    assert size > 0, "the reference update did not move the weights"
    return gap / size


def _trpo_semantics(d: int, delta: float, damping: float, **kwargs) -> dict:
    """NPG's arguments for TRPO's ``target_kl=delta, cg_damping=damping`` with ``d`` averaged KL elements."""
    return dict(target_kl=d * delta, cg_damping=d * damping, damped_step_size=True, **kwargs)


# The zoo's TRPO entry for HalfCheetah, and a solver setting both share
DELTA, DAMPING = 0.04, 0.1
SOLVER = dict(cg_max_steps=15, line_search_max_iter=10, line_search_shrinking_factor=0.8)


@pytest.mark.parametrize("action_key", list(ACTION_SPACES))
def test_npg_with_trpo_semantics_takes_trpo_update(action_key, monkeypatch):
    _, d = ACTION_SPACES[action_key]
    trpo_kwargs = dict(target_kl=DELTA, cg_damping=DAMPING, **SOLVER)
    trpo, npg = _make_pair(action_key, trpo_kwargs, _trpo_semantics(d, DELTA, DAMPING, **SOLVER))
    before, after_trpo, after_npg, logged = _train_both(trpo, npg, monkeypatch)
    assert logged["train/line_search_success"] == 1.0
    # The actor's natural-gradient step alone, then with the critic's Adam epochs
    assert _update_gap(before, after_trpo, after_npg, actor_only=True) < 1e-9
    assert _update_gap(before, after_trpo, after_npg) < 1e-9


def test_line_search_backtracks_like_trpo(monkeypatch):
    # A large radius, little damping and advantages that reward wider actions: the full step is rejected
    d = ACTION_SPACES["box6"][1]
    delta, damping = 1.0, 0.01
    trpo_kwargs = dict(target_kl=delta, cg_damping=damping, **SOLVER)
    trpo, npg = _make_pair("box6", trpo_kwargs, _trpo_semantics(d, delta, damping, **SOLVER), explore=True)
    before, after_trpo, after_npg, logged = _train_both(trpo, npg, monkeypatch)
    assert logged["train/line_search_success"] == 1.0
    assert logged["train/line_search_backtracks"] >= 1
    assert _update_gap(before, after_trpo, after_npg, actor_only=True) < 1e-9


def test_failed_line_search_keeps_the_actor_like_trpo(monkeypatch):
    d = ACTION_SPACES["box6"][1]
    delta, damping = 1.0, 0.01
    solver = {**SOLVER, "line_search_max_iter": 1}  # the full step only, which is rejected
    trpo_kwargs = dict(target_kl=delta, cg_damping=damping, **solver)
    trpo, npg = _make_pair("box6", trpo_kwargs, _trpo_semantics(d, delta, damping, **solver), explore=True)
    before, after_trpo, after_npg, logged = _train_both(trpo, npg, monkeypatch)
    assert logged["train/line_search_success"] == 0.0
    for name, value in before.items():
        if "value" not in name:
            assert th.equal(after_trpo[name], value) and th.equal(after_npg[name], value)
    assert _update_gap(before, after_trpo, after_npg) < 1e-9  # the critic still learns, the same way


@pytest.mark.parametrize(
    "dropped, change",
    [
        ("radius d * delta", dict(target_kl=DELTA)),
        ("damping d * lambda", dict(cg_damping=DAMPING)),
        ("damped step size", dict(damped_step_size=False)),
    ],
)
def test_each_conversion_is_needed(dropped, change, monkeypatch):
    # HalfCheetah's 6 actions: without any one of the three conversions NPG takes another step than TRPO
    d = ACTION_SPACES["box6"][1]
    trpo_kwargs = dict(target_kl=DELTA, cg_damping=DAMPING, **SOLVER)
    npg_kwargs = {**_trpo_semantics(d, DELTA, DAMPING, **SOLVER), **change}
    trpo, npg = _make_pair("box6", trpo_kwargs, npg_kwargs)
    before, after_trpo, after_npg, _ = _train_both(trpo, npg, monkeypatch)
    gap = _update_gap(before, after_trpo, after_npg, actor_only=True)
    assert gap > 1e-3, dropped  # a real difference, against a match to 1e-9


def test_npg_follows_trpo_along_a_halfcheetah_run(monkeypatch, outside_checkout):
    # Real rollouts (float32, observations normalised on the way): before each of TRPO's updates, NPG with TRPO's
    # semantics steps from the same weights on the same batch, with its own line-search KL and TRPO's random CG start
    pytest.importorskip("mujoco", reason="MuJoCo is not installed (pip install 'sb3-npg[envs]')")
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    th.set_default_dtype(th.float32)
    env = VecNormalize(make_vec_env("HalfCheetah-v5", n_envs=2, seed=0))
    delta, damping, d = 0.04, 0.1, 6  # the zoo's HalfCheetah entry
    solver = dict(cg_max_steps=25, n_steps=512, n_critic_updates=2)
    npg = NPG("MlpPolicy", env, line_search=True, **_trpo_semantics(d, delta, damping, **solver), seed=0)
    npg.set_logger(configure(None, []))
    gaps = []

    class LockstepTRPO(sb3_contrib.TRPO):
        def train(self) -> None:
            before = {name: value.clone() for name, value in self.policy.state_dict().items()}
            npg.policy.load_state_dict(before)
            npg.rollout_buffer = self.rollout_buffer
            state = np.random.get_state()
            npg._policy_step(next(iter(self.rollout_buffer.get(batch_size=None))), d * delta)
            np.random.set_state(state)  # TRPO's critic sees the minibatches it would have seen
            after_npg = npg.policy.state_dict()
            super().train()
            gaps.append(_update_gap(before, self.policy.state_dict(), after_npg, actor_only=True))

    trpo = LockstepTRPO("MlpPolicy", env, target_kl=delta, cg_damping=damping, **solver, seed=0)
    trpo.learn(4 * 1024)
    assert len(gaps) == 4
    assert max(gaps) < 1e-4
