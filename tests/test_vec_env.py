"""
The VecEnv of ``sb3-npg train``: SB3's ``DummyVecEnv`` whose infos are copied without deep-copying immutable scalars,
with the same steps, and the same infos, as SB3's.
"""

import copy

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_npg.common.vec_env import InfoCopyDummyVecEnv, InfoList
from sb3_npg.zoo import config


class Mutable:
    """A value with state of its own: deep-copied."""

    def __init__(self):
        self.items = [1]


class TaggedFloat(float):
    """A float subclass: not one of the exact immutable types, so deep-copied as deepcopy would."""


def _infos():
    shared = np.arange(3.0)
    return [
        {"x": np.float64(1.5), "n": np.int32(2), "done": np.bool_(True), "name": "a", "none": None, "py": 0.5},
        {"terminal_observation": shared, "again": shared, "episode": {"r": 1.0, "l": 5}, "TimeLimit.truncated": False},
        {"mutable": Mutable(), "tagged": TaggedFloat(2.0), (1, 2): "tuple key"},
    ]


def test_info_list_copies_as_deepcopy_does():
    infos = _infos()
    ours, theirs = copy.deepcopy(InfoList(infos)), copy.deepcopy(infos)
    assert type(ours) is list and len(ours) == len(theirs)
    for got, expected, original in zip(ours, theirs, infos, strict=True):
        assert got is not original and list(got) == list(expected)
        for key, value in got.items():
            assert type(value) is type(expected[key])
            if isinstance(value, Mutable):
                assert value is not original[key] and value.items == expected[key].items
            else:
                np.testing.assert_array_equal(value, expected[key])
    # Arrays, nested dicts and objects are new ones; what shared an array still shares its copy
    assert ours[1]["terminal_observation"] is not infos[1]["terminal_observation"]
    assert ours[1]["again"] is ours[1]["terminal_observation"]
    assert ours[1]["episode"] is not infos[1]["episode"] and ours[1]["episode"] == {"r": 1.0, "l": 5}
    assert ours[2]["tagged"] is not infos[2]["tagged"]
    # Immutable scalars are kept, as deepcopy keeps Python's own
    assert ours[0]["x"] is infos[0]["x"] and ours[0]["n"] is infos[0]["n"] and ours[0]["done"] is infos[0]["done"]


def test_a_dict_subclass_is_deep_copied():
    class Info(dict):
        pass

    infos = InfoList([Info(a=np.zeros(2))])
    copied = copy.deepcopy(infos)
    assert type(copied[0]) is Info and copied[0]["a"] is not infos[0]["a"]


def test_the_returned_infos_are_the_callers():
    # What a caller keeps is not changed by the next steps
    env = InfoCopyDummyVecEnv([lambda: gym.make("CartPole-v1")] * 2)
    env.reset()
    kept = []
    for _ in range(60):
        _, _, dones, infos = env.step(np.array([0, 1]))
        kept.append((dones.copy(), infos))
    assert all(type(infos) is list and infos is not env.buf_infos for _, infos in kept)
    terminal = [infos[i]["terminal_observation"] for dones, infos in kept for i in np.flatnonzero(dones)]
    assert terminal and all(isinstance(obs, np.ndarray) for obs in terminal)
    env.buf_infos[0]["injected"] = 1
    assert all("injected" not in infos[0] for _, infos in kept)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_steps_equal_sb3s_dummy_vec_env(env_id):
    entry = {"n_envs": 3, "normalize": True}
    ours = config.make_env_from_hyperparams(entry, env_id, seed=4)
    theirs = config.make_env_from_hyperparams(entry, env_id, seed=4, vec_env_cls=DummyVecEnv)
    assert type(ours.venv) is InfoCopyDummyVecEnv and type(theirs.venv) is DummyVecEnv
    np.testing.assert_array_equal(ours.reset(), theirs.reset())
    ours.action_space.seed(0)
    for _ in range(250):
        action = np.stack([ours.action_space.sample() for _ in range(3)])
        for got, expected in zip(ours.step(action), theirs.step(action), strict=True):
            if isinstance(got, list):
                assert [sorted(info) for info in got] == [sorted(info) for info in expected]
                for info, other in zip(got, expected, strict=True):
                    for key in info:
                        if key == "episode":  # the Monitor's "t" is the wall time
                            info[key].pop("t"), other[key].pop("t")
                        np.testing.assert_equal(info[key], other[key])
            else:
                np.testing.assert_array_equal(got, expected)
