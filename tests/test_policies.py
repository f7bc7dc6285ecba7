"""
The policies' rollout step: distributions built without argument checks inside ``forward`` only, nowhere else, and
SB3's diagonal Gaussian sampled without building it, with the same results as SB3's ``forward``.
"""

import gymnasium as gym
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from sb3_npg import KLPPO, NPG, RecurrentKLPPO, RecurrentNPG
from sb3_npg.common.policies import MlpPolicy, distribution_checks, run_plain

ALGOS = [
    pytest.param(NPG, "MlpPolicy", id="NPG"),
    pytest.param(KLPPO, "MlpPolicy", id="KLPPO"),
    pytest.param(RecurrentNPG, "MlpLstmPolicy", id="RecurrentNPG"),
    pytest.param(RecurrentKLPPO, "MlpLstmPolicy", id="RecurrentKLPPO"),
]


class ChecksSeenByCallback(BaseCallback):
    """Records whether distributions are checked while a user's callback runs."""

    def __init__(self):
        super().__init__()
        self.seen: list[bool] = []

    def _on_step(self) -> bool:
        self.seen.append(bool(th.distributions.Distribution._validate_args))
        return True


def _record_checks_in_rollout_step(model, monkeypatch) -> list[bool]:
    seen: list[bool] = []
    original = model.policy._get_action_dist_from_latent

    def recording(*args, **kwargs):
        seen.append(bool(th.distributions.Distribution._validate_args))
        return original(*args, **kwargs)

    monkeypatch.setattr(model.policy, "_get_action_dist_from_latent", recording)
    return seen


@pytest.mark.parametrize("algo, policy", ALGOS)
@pytest.mark.parametrize("user_setting", [True, False])
def test_rollout_step_skips_checks_and_restores_the_users_setting(algo, policy, user_setting, monkeypatch):
    model = algo(policy, "Pendulum-v1", n_steps=64, batch_size=64, seed=0)
    in_rollout_step = _record_checks_in_rollout_step(model, monkeypatch)
    callback = ChecksSeenByCallback()
    with distribution_checks(user_setting):
        model.learn(64, callback=callback)
        assert th.distributions.Distribution._validate_args is user_setting
    assert in_rollout_step and not any(in_rollout_step[:64])  # every rollout step ran without checks
    assert callback.seen == [user_setting] * 64  # the user's callback saw the user's setting


def test_predict_keeps_the_checks(monkeypatch):
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=64, seed=0)
    in_predict = _record_checks_in_rollout_step(model, monkeypatch)
    with distribution_checks(True):
        model.predict(model.observation_space.sample())
    assert in_predict == [True]


def test_checks_are_restored_when_the_forward_pass_raises(monkeypatch):
    model = NPG("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=64, seed=0)
    monkeypatch.setattr(model.policy, "extract_features", lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("boom")))
    with distribution_checks(True):
        with pytest.raises(RuntimeError, match="boom"):
            model.policy(th.zeros(1, 3))
        assert th.distributions.Distribution._validate_args is True


def _policy_pair(share_features_extractor: bool, space: gym.spaces.Space) -> tuple[ActorCriticPolicy, ActorCriticPolicy]:
    """Ours and SB3's ``ActorCriticPolicy`` with the same weights."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (5,))
    kwargs = dict(share_features_extractor=share_features_extractor, log_std_init=-0.7)
    if not isinstance(space, gym.spaces.Box):
        kwargs.pop("log_std_init")
    ours = MlpPolicy(observation_space, space, lambda _: 1e-3, **kwargs)
    theirs = ActorCriticPolicy(observation_space, space, lambda _: 1e-3, **kwargs)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


@pytest.mark.parametrize("share_features_extractor", [True, False])
@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize(
    "space",
    [gym.spaces.Box(-2.0, 2.0, (3,)), gym.spaces.Box(-1.0, 1.0, (2, 2)), gym.spaces.Discrete(4)],
    ids=["box", "box-2d", "discrete"],
)
def test_rollout_step_equals_sb3s_forward_bit_for_bit(share_features_extractor, deterministic, space):
    ours, theirs = _policy_pair(share_features_extractor, space)
    obs = th.randn(16, 5)
    th.manual_seed(3)
    expected = theirs(obs, deterministic=deterministic)
    th.manual_seed(3)
    with distribution_checks(True):
        got = ours(obs, deterministic=deterministic)
    for name, a, b in zip(("actions", "values", "log_prob"), got, expected, strict=True):
        assert a.shape == b.shape and th.equal(a, b), name
    # the random state moved on by the same draws
    assert th.equal(th.rand(4), (th.manual_seed(3), theirs(obs, deterministic=deterministic), th.rand(4))[2])


def test_gaussian_rollout_step_builds_no_distribution(monkeypatch):
    ours, _ = _policy_pair(True, gym.spaces.Box(-1.0, 1.0, (3,)))
    built: list[int] = []
    original = th.distributions.Normal.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(th.distributions.Normal, "__init__", counting)
    ours(th.zeros(2, 5))
    assert built == []
    ours.get_distribution(th.zeros(2, 5))  # everything else still builds SB3's distribution
    assert built == [1]


class ShiftedMean(MlpPolicy):
    """A user's policy that builds its distribution its own way."""

    def _get_action_dist_from_latent(self, latent_pi):
        return self.action_dist.proba_distribution(self.action_net(latent_pi) + 10.0, self.log_std)


def test_a_customised_distribution_takes_sb3s_path():
    policy = ShiftedMean(gym.spaces.Box(-1.0, 1.0, (5,)), gym.spaces.Box(-1.0, 1.0, (3,)), lambda _: 1e-3)
    actions, _, _ = policy(th.zeros(4, 5), deterministic=True)
    assert th.all(actions > 5.0)


def test_npg_learns_the_same_with_sb3s_policy():
    """A whole NPG update from our rollout step and from SB3's is the same, bit for bit."""
    state = {}
    for policy in ("MlpPolicy", ActorCriticPolicy):  # each built and trained in turn: the seed sets torch's global state
        model = NPG(policy, "Pendulum-v1", n_steps=128, batch_size=64, n_critic_updates=2, seed=0)
        model.learn(384)
        state[policy] = model.policy.state_dict()
    ours, theirs = state.values()
    assert all(th.equal(ours[key], theirs[key]) for key in ours)


def _count_linear_calls(monkeypatch) -> list[nn.Module]:
    """Records every ``nn.Linear`` called as a module (through ``nn.Module.__call__``)."""
    called: list[nn.Module] = []
    original = nn.Module.__call__

    def counting(self, *args, **kwargs):
        called.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(nn.Linear, "__call__", counting)
    return called


def test_rollout_step_runs_the_linear_kernels_directly(monkeypatch):
    ours, theirs = _policy_pair(False, gym.spaces.Box(-1.0, 1.0, (3,)))
    called = _count_linear_calls(monkeypatch)
    theirs(th.zeros(2, 5))
    assert len(called) == 6  # SB3: two layers each in the actor and the critic, and the two heads
    called.clear()
    ours(th.zeros(2, 5))
    assert called == []


def _hook_target(policy: ActorCriticPolicy, where: str) -> nn.Module:
    targets = {"layer": policy.mlp_extractor.policy_net[0], "sequential": policy.mlp_extractor.value_net}
    return targets.get(where, policy.action_net)


@pytest.mark.parametrize("where", ["layer", "sequential", "head", "global"])
def test_a_hook_sends_the_rollout_step_through_the_modules(where):
    """A hook on a module of the step, or on every module, is run, with the effect it has on SB3's forward."""
    obs = th.randn(4, 5)
    results, seen = [], []
    for policy in _policy_pair(True, gym.spaces.Box(-1.0, 1.0, (3,))):
        called: list[type[nn.Module]] = []

        def hook(module, args, output, called=called):
            called.append(type(module))
            return output + 1.0 if isinstance(module, nn.Linear) else output

        if where == "global":
            handle = nn.modules.module.register_module_forward_hook(hook)
        else:
            handle = _hook_target(policy, where).register_forward_hook(hook)
        th.manual_seed(0)
        try:
            results.append(policy(obs))
        finally:
            handle.remove()
        seen.append(called)
    if where == "global":  # the same modules' hooks ran, in the same order (the last: the policy itself, ours or SB3's)
        assert len(seen[0]) > 10 and seen[0][:-1] == seen[1][:-1]
    else:
        assert seen[0] == seen[1] == [nn.Sequential if where == "sequential" else nn.Linear]
    for a, b in zip(*results, strict=True):
        assert th.equal(a, b)


def test_a_replaced_forward_or_another_layer_is_called_as_a_module():
    linear = nn.Linear(3, 2)
    x = th.randn(4, 3)
    assert th.equal(run_plain(nn.Sequential(linear, nn.Tanh(), nn.Identity()), x), th.tanh(linear(x)))
    assert th.equal(run_plain(nn.Sequential(linear, nn.ELU()), x), nn.functional.elu(linear(x)))
    linear.forward = lambda inputs: th.zeros(4, 2)  # a user's replacement on the instance
    assert th.equal(run_plain(linear, x), th.zeros(4, 2))
    assert th.equal(run_plain(nn.Sequential(nn.Linear(3, 2), linear), x), th.zeros(4, 2))
