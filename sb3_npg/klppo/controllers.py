"""The rules that adapt KLPPO's KL-penalty coefficient beta (adaptive, dual, fixed) and its step size (tracking)."""


def adaptive_kl_coef(kl_coef: float, kl: float, target_kl: float, tolerance: float = 1.5, factor: float = 2.0) -> float:
    """
    The PPO paper's rule: halve the coefficient when ``kl < target / tolerance``, double it when ``kl > target * tolerance``.

    Paper: https://arxiv.org/abs/1707.06347 (section 4)

    :param kl_coef: the current coefficient beta
    :param kl: the KL divergence measured over the whole update
    :param target_kl: the target ``d_targ``
    :param tolerance: width of the dead band (1.5 in the paper)
    :param factor: multiplicative change (2 in the paper)
    :return: the new coefficient
    """
    if kl < target_kl / tolerance:
        return kl_coef / factor
    if kl > target_kl * tolerance:
        return kl_coef * factor
    return kl_coef


def dual_kl_coef(kl_coef: float, kl: float, target_kl: float, learning_rate: float) -> float:
    """
    Dual (projected gradient) ascent on the Lagrange multiplier of ``KL <= target``: ``max(0, beta + lr (kl - target))``.

    :param kl_coef: the current coefficient beta
    :param kl: the KL divergence measured over the whole update
    :param target_kl: the constraint's bound
    :param learning_rate: step size of the dual ascent
    :return: the new coefficient
    """
    return max(0.0, kl_coef + learning_rate * (kl - target_kl))


KL_ADAPTATIONS = ("tracking", "adaptive", "dual", "fixed")


def clip_kl_coef(kl_coef: float, kl_coef_min: float, kl_coef_max: float) -> float:
    """
    Keep a KL-penalty coefficient inside its bounds.

    :param kl_coef: the coefficient beta
    :param kl_coef_min: the smallest allowed value
    :param kl_coef_max: the largest allowed value
    :return: ``kl_coef`` clipped to ``[kl_coef_min, kl_coef_max]``
    """
    return min(max(kl_coef, kl_coef_min), kl_coef_max)


def next_kl_coef(
    adaptation: str,
    kl_coef: float,
    kl: float,
    target_kl: float,
    dual_learning_rate: float,
    kl_coef_min: float = 0.0,
    kl_coef_max: float = float("inf"),
) -> float:
    """
    The coefficient beta for the next update, by the named rule, clipped to its bounds.

    ``"tracking"`` and ``"adaptive"`` use :func:`adaptive_kl_coef` (the PPO paper's rule),
    ``"dual"`` uses :func:`dual_kl_coef` and ``"fixed"`` keeps beta (bounds are not applied to it).

    :param adaptation: one of ``"tracking"``, ``"adaptive"``, ``"dual"``, ``"fixed"``
    :param kl_coef: the current coefficient
    :param kl: the KL divergence measured over the whole update
    :param target_kl: the target ``d_targ``
    :param dual_learning_rate: step size of the dual rule (unused by the other rules)
    :param kl_coef_min: lower bound of beta
    :param kl_coef_max: upper bound of beta
    :return: the new coefficient
    """
    if adaptation not in KL_ADAPTATIONS:
        raise ValueError(f"adaptation must be one of {KL_ADAPTATIONS}, got {adaptation!r}")
    if adaptation == "fixed":
        return kl_coef
    if adaptation == "dual":
        new_coef = dual_kl_coef(kl_coef, kl, target_kl, dual_learning_rate)
    else:
        new_coef = adaptive_kl_coef(kl_coef, kl, target_kl)
    return clip_kl_coef(new_coef, kl_coef_min, kl_coef_max)


def tracking_lr_multiplier(
    lr_multiplier: float,
    kl: float,
    target_kl: float,
    progress: float = 1.0,
    gain: float = 0.5,
    max_change: float = 2.0,
    multiplier_min: float = 0.1,
    multiplier_max: float = 10.0,
) -> float:
    """
    Step-size rule of the ``"tracking"`` KL controller: scale the learning rate so that the KL follows a ramp to the target.

    After a fraction ``progress`` of an update's optimizer steps, the KL should be ``progress * target_kl``
    (it reaches the target when the update ends). The KL of the steps still to come grows like the square
    of the step size, so ``(progress * target_kl / kl) ** 0.5`` is the change of the learning rate that puts
    the KL back on the ramp; the rule applies a power ``gain`` of the ratio (``0.5``: that estimate;
    smaller: damped), limits the change to ``[1 / max_change, max_change]`` and keeps the multiplier within
    ``[multiplier_min, multiplier_max]``. A KL of zero (or below) counts as far below the ramp.

    :param lr_multiplier: the current multiplier of the learning rate
    :param kl: the KL divergence of the whole rollout, measured now
    :param target_kl: the KL the update should end at
    :param progress: fraction of the update's planned optimizer steps taken so far, in ``(0, 1]``
    :param gain: exponent applied to ``progress * target_kl / kl``
    :param max_change: largest factor by which one call may change the multiplier
    :param multiplier_min: lower bound of the multiplier
    :param multiplier_max: upper bound of the multiplier
    :return: the new multiplier
    """
    if not 0.0 < progress <= 1.0:
        raise ValueError(f"progress must be in (0, 1], got {progress!r}")
    ratio = progress * target_kl / kl if kl > 0.0 else float("inf")
    change = min(max(ratio**gain, 1.0 / max_change), max_change)
    return min(max(lr_multiplier * change, multiplier_min), multiplier_max)
