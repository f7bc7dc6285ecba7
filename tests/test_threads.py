"""The update's torch threads (``update_threads``): one for a small policy on the CPU, torch's setting restored after."""

import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from sb3_npg import KLPPO, NPG
from sb3_npg.common.threads import SMALL_POLICY_PARAMETERS

FAST = {NPG: dict(n_steps=32, batch_size=32, n_critic_updates=1), KLPPO: dict(n_steps=32, batch_size=16, n_epochs=1)}


class RolloutThreads(BaseCallback):
    """Records torch's thread count at every environment step (rollouts and callbacks keep torch's setting)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[int] = set()

    def _on_step(self) -> bool:
        self.seen.add(th.get_num_threads())
        return True


def threads_seen(algo, monkeypatch, **kwargs) -> tuple[set[int], set[int]]:
    """The thread counts seen inside ``train()`` and during the rollouts of a two-update run."""
    model = algo("MlpPolicy", "CartPole-v1", seed=0, **{**FAST[algo], **kwargs})
    in_train: set[int] = set()
    log_update = model._log_update

    def recording_log_update(*args, **kwargs):
        in_train.add(th.get_num_threads())
        log_update(*args, **kwargs)

    monkeypatch.setattr(model, "_log_update", recording_log_update)
    callback = RolloutThreads()
    model.learn(64, callback=callback)
    return in_train, callback.seen


@pytest.mark.parametrize("algo", [NPG, KLPPO])
def test_small_policy_is_updated_on_one_thread(algo, monkeypatch):
    th.set_num_threads(2)  # torch's default on a 2-core machine (the conftest fixture restores the count)
    in_train, in_rollouts = threads_seen(algo, monkeypatch)
    assert in_train == {1}
    assert in_rollouts == {2} and th.get_num_threads() == 2  # nothing changed outside the update


@pytest.mark.parametrize("algo", [NPG, KLPPO])
def test_update_threads_overrides(algo, monkeypatch):
    th.set_num_threads(2)
    assert threads_seen(algo, monkeypatch, update_threads=0)[0] == {2}  # torch's setting
    assert threads_seen(algo, monkeypatch, update_threads=3) == ({3}, {2})
    # A large policy keeps torch's setting under "auto"
    large = dict(policy_kwargs=dict(net_arch=[512, 512]))
    model = algo("MlpPolicy", "CartPole-v1", **large)
    assert sum(p.numel() for p in model.policy.parameters()) > SMALL_POLICY_PARAMETERS
    assert threads_seen(algo, monkeypatch, **large)[0] == {2}
    th.set_num_threads(1)
    assert threads_seen(algo, monkeypatch) == ({1}, {1})


@pytest.mark.parametrize("algo", [NPG, KLPPO])
def test_update_threads_is_saved(algo, tmp_path):
    model = algo("MlpPolicy", "CartPole-v1", update_threads=2, **FAST[algo])
    model.save(tmp_path / "model")
    assert algo.load(tmp_path / "model").update_threads == 2
    assert algo("MlpPolicy", "CartPole-v1").update_threads == "auto"
    with pytest.raises(ValueError, match=r"update_threads must be 'auto' or an integer >= 0 \(0: torch's own setting\)"):
        algo("MlpPolicy", "CartPole-v1", update_threads="all")
