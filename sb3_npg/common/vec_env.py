"""
:class:`InfoCopyDummyVecEnv`: SB3's ``DummyVecEnv``, with a cheaper copy of each step's infos.

SB3's ``DummyVecEnv.step_wait`` returns ``deepcopy(self.buf_infos)``, so that what a caller keeps is not changed by
the next step. ``copy.deepcopy`` takes every value through its generic machinery, NumPy scalars included. A MuJoCo
task's infos are a few NumPy scalars per copy (Walker2d-v5: six), and at 16 copies their deep copy costs about 3%
of the simulation itself, per step.

Here the step's infos are held in an :class:`InfoList`, whose ``__deepcopy__`` returns the copy ``copy.deepcopy``
would: a new list of new dicts, each value deep-copied (arrays, nested dicts, the ``"terminal_observation"`` and
``"episode"`` entries, anything a wrapper adds), except the immutable scalars. ``copy.deepcopy`` already returns
Python's numbers, strings, bytes and ``None`` as they are; :class:`InfoList` does the same for NumPy's numeric and
boolean scalars, which are immutable too. Everything else, the step loop included, is SB3's ``DummyVecEnv``.

``sb3-npg train`` (:class:`sb3_npg.zoo.exp_manager.NPGExperimentManager`) and
:func:`sb3_npg.zoo.config.make_env_from_hyperparams` build it where the zoo would build a ``DummyVecEnv``.
"""

import copy
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

#: The types whose values are kept, not copied: ``copy.deepcopy``'s atomic scalars and NumPy's numeric and boolean
#: scalars (exact types: a subclass may carry state of its own)
IMMUTABLE_SCALARS: frozenset[type] = frozenset(
    {int, float, bool, complex, str, bytes, type(None)}
    | {scalar for scalar in np.sctypeDict.values() if issubclass(scalar, (np.number, np.bool_))}
)


def _copy_value(value: Any, memo: dict[int, Any]) -> Any:
    return value if type(value) in IMMUTABLE_SCALARS else copy.deepcopy(value, memo)


class InfoList(list):
    """A list of info dicts whose deep copy keeps immutable scalars as they are (see the module's notes)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        copied: list[Any] = []
        memo[id(self)] = copied
        for info in self:
            if type(info) is dict:
                copied.append({_copy_value(key, memo): _copy_value(value, memo) for key, value in info.items()})
            else:  # a dict subclass, or anything else a caller put there
                copied.append(copy.deepcopy(info, memo))
        return copied


class InfoCopyDummyVecEnv(DummyVecEnv):
    """
    SB3's ``DummyVecEnv`` whose ``step`` copies the infos it returns without deep-copying immutable scalars: the same
    infos, cheaper (see the module's notes).

    :param env_fns: functions that each build one environment
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]]):
        super().__init__(env_fns)
        self.buf_infos = InfoList(self.buf_infos)


__all__ = ["IMMUTABLE_SCALARS", "InfoCopyDummyVecEnv", "InfoList"]
