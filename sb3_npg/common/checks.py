"""
Checks of the user's arguments (each error names the parameter and what is allowed), and the report of an update
skipped for a numerical fault.
"""

import math
import numbers
import warnings
from typing import Any


def check_int(name: str, value: Any, minimum: int) -> None:
    """
    Raise ``ValueError`` unless ``value`` is an integer ``>= minimum`` (Python or NumPy integer, not a bool).

    :param name: the parameter's name, for the message
    :param value: the value given
    :param minimum: the smallest allowed value
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_float(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """
    Raise ``ValueError`` unless ``value`` is a finite real number in the given interval.

    Infinities are refused even where a bound is infinite: a parameter without an upper bound accepts
    any large finite value. The message names only values that are allowed: ``must be in [0.0, 1.0]``
    with two bounds, ``must be > 0.0`` with a lower bound alone.

    :param name: the parameter's name, for the message
    :param value: the value given
    :param low: lower bound (``-inf``: none)
    :param high: upper bound (``inf``: none)
    :param low_inclusive: whether ``low`` itself is allowed
    :param high_inclusive: whether ``high`` itself is allowed
    """
    allowed = _allowed_range(low, high, low_inclusive, high_inclusive)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{' ' + allowed if allowed else ''}, got {value!r}")
    number = float(value)
    below = number < low or (number == low and not low_inclusive)
    above = number > high or (number == high and not high_inclusive)
    if below or above:
        raise ValueError(f"{name} must be {allowed}, got {value}")  # a number as given: -1, 0.5 (NumPy's too)


def _allowed_range(low: float, high: float, low_inclusive: bool, high_inclusive: bool) -> str:
    """The finite values of an interval, in words: ``in [a, b)``, ``>= a``, ``< b``, or ``""`` for every number."""
    if math.isfinite(low) and math.isfinite(high):
        return f"in {'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
    if math.isfinite(low):
        return f"{'>=' if low_inclusive else '>'} {low}"
    if math.isfinite(high):
        return f"{'<=' if high_inclusive else '<'} {high}"
    return ""


def check_float_or_schedule(name: str, value: Any, low: float, low_inclusive: bool = False) -> None:
    """
    Like :func:`check_float` with no upper bound, but also accept a callable schedule (checked at progress 1).

    :param name: the parameter's name, for the message
    :param value: a number or a function of the progress remaining
    :param low: lower bound
    :param low_inclusive: whether ``low`` itself is allowed
    """
    if callable(value):
        check_float(f"{name}(1.0)", value(1.0), low=low, low_inclusive=low_inclusive)
    else:
        check_float(name, value, low=low, low_inclusive=low_inclusive)


def check_rollout_size(n_steps: int, n_envs: int, batch_size: int | None, normalize_advantage: bool) -> None:
    """
    Check the rollout buffer's size ``n_steps * n_envs`` against the advantage normalisation and the minibatch size.

    Raise ``ValueError`` when advantages are normalized over fewer than 2 samples. Warn when ``batch_size``
    (if given) is larger than the buffer (every minibatch is then the whole rollout), or does not divide it
    (every epoch then ends with a truncated minibatch).

    :param n_steps: steps per environment per rollout
    :param n_envs: number of environments
    :param batch_size: minibatch size, or None to skip that check
    :param normalize_advantage: whether the advantages are normalized
    """
    buffer_size = n_steps * n_envs
    if normalize_advantage and buffer_size < 2:
        raise ValueError(
            f"n_steps * n_envs must be >= 2 when normalize_advantage=True, got n_steps={n_steps} and n_envs={n_envs}"
        )
    if batch_size is not None and batch_size > buffer_size:
        warnings.warn(
            f"batch_size={batch_size} is larger than the rollout buffer's size n_steps * n_envs = {buffer_size}: "
            f"every minibatch is the whole rollout of {buffer_size} samples. "
            "A batch_size that divides n_steps * n_envs is recommended."
        )
    elif batch_size is not None and buffer_size % batch_size > 0:
        warnings.warn(
            f"batch_size={batch_size} does not divide the rollout buffer's size n_steps * n_envs = {buffer_size}: "
            f"each epoch ends with a truncated minibatch of {buffer_size % batch_size} samples. "
            "A batch_size that divides n_steps * n_envs is recommended."
        )


def report_skipped_update(algorithm: str, reason: str | None, n_updates: int, verbose: int, warned: bool) -> bool:
    """
    Report a skipped update: a warning the first time, then a line per skip when ``verbose >= 1``.

    :param algorithm: the algorithm's name, for the messages
    :param reason: why the update was skipped, None when it was not (nothing is reported)
    :param n_updates: the update's number, for the message
    :param verbose: the algorithm's verbosity level
    :param warned: whether the warning was already given
    :return: whether the warning has been given now
    """
    if reason is None:
        return warned
    if not warned:
        warnings.warn(f"{algorithm} skipped an update ({reason}); parameters were kept. Further skips are only logged.")
    if verbose >= 1:
        print(f"{algorithm} update {n_updates} skipped: {reason}")
    return True
