"""
Schedules of the algorithms' arguments: a float or a callable as SB3's ``FloatSchedule``, and the KL target a
schedule gives, never below its floor.
"""

from collections.abc import Callable

from stable_baselines3.common.utils import FloatSchedule


def as_schedule(value: float | Callable[[float], float]) -> FloatSchedule:
    """
    Turn a constant or a schedule of the progress remaining (1 -> 0) into SB3's ``FloatSchedule``.

    A constant becomes ``FloatSchedule(ConstantSchedule(value))``, as SB3 stores ``learning_rate`` and PPO's
    ``clip_range``: plain objects that pickle by class, so that a saved model loads on another machine or
    Python version. A callable is wrapped as it is (pass SB3's ``LinearSchedule`` rather than a lambda for a
    portable annealed value).

    :param value: a float, or a function of the progress remaining
    :return: the schedule
    """
    return FloatSchedule(value)


# The smallest KL target a schedule gives, as a fraction of its value at the start (progress remaining 1)
KL_TARGET_FLOOR = 0.01


def kl_target(schedule: Callable[[float], float], progress_remaining: float) -> float:
    """
    The KL target of an update (NPG's trust-region radius, KLPPO's penalty target) from its schedule.

    SB3's progress remaining goes from 1 to 0 over ``total_timesteps``, and below 0 once a rollout ends past
    them (the last rollout of a run whose total is not a multiple of the rollout's size, or a ``learn()``
    continued with ``reset_num_timesteps=False``). The rule: the schedule is evaluated at the progress clipped
    to ``[0, 1]``, so past its end a schedule keeps its end value; and a target is never below
    ``KL_TARGET_FLOOR`` (1%) of the schedule's value at progress 1, so a schedule that decays to 0 (the zoo's
    ``lin_<x>``) ends at ``x / 100``, never at 0. A value that is not a number is raised to the floor too.

    :param schedule: the schedule of the target (a constant's is constant)
    :param progress_remaining: the algorithm's ``_current_progress_remaining``
    :return: the target, strictly positive when the schedule's value at progress 1 is
    """
    value = schedule(min(max(progress_remaining, 0.0), 1.0))
    floor = KL_TARGET_FLOOR * schedule(1.0)
    return value if value >= floor else floor
