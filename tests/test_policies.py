"""The policies' rollout step: distributions built without argument checks inside ``forward`` only, nowhere else."""

import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from sb3_npg import KLPPO, NPG, RecurrentKLPPO, RecurrentNPG
from sb3_npg.common.policies import distribution_checks

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
