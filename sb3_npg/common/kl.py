"""KL divergences between an old and a new policy, and the rules that adapt a KL-penalty coefficient."""

import functools

import torch as th
from stable_baselines3.common.distributions import Distribution


def _torch_distributions(distribution: Distribution) -> list[th.distributions.Distribution]:
    inner = distribution.distribution
    return list(inner) if isinstance(inner, (list, tuple)) else [inner]


def _sum_action_dims(kl: th.Tensor) -> th.Tensor:
    """Reduce a per-sample KL of shape ``(n, ...)`` to shape ``(n,)`` by summing the action dimensions."""
    return kl.reshape(kl.shape[0], -1).sum(dim=1) if kl.dim() > 1 else kl


def has_exact_kl(distribution: Distribution) -> bool:
    """
    Whether PyTorch knows the closed-form KL divergence for this SB3 distribution.

    :param distribution: an SB3 distribution whose parameters have been set
    :return: True if ``torch.distributions.kl_divergence`` is registered for its torch distribution(s)
    """
    return all(_closed_form_kl_known(type(dist)) for dist in _torch_distributions(distribution))  # type: ignore[arg-type]


@functools.cache
def _closed_form_kl_known(dist_type: type) -> bool:
    return th.distributions.kl._dispatch_kl(dist_type, dist_type) is not NotImplemented


def exact_kl(old_distribution: Distribution, new_distribution: Distribution) -> th.Tensor:
    """
    Closed-form ``KL(pi_old(.|s) || pi_new(.|s))`` per state, summed over action dimensions.

    For ``MultiCategoricalDistribution`` the sub-actions are independent, so their KLs add up.
    A squashed Gaussian has the KL of its underlying Gaussian (tanh is a bijection).

    :param old_distribution: the distribution before the update (its tensors need no gradient)
    :param new_distribution: the distribution after the update
    :return: a tensor of shape ``(n_states,)``
    """
    old_parts = _torch_distributions(old_distribution)
    new_parts = _torch_distributions(new_distribution)
    if len(old_parts) != len(new_parts):
        raise ValueError(f"old and new distributions have {len(old_parts)} and {len(new_parts)} parts")
    total = None
    for old, new in zip(old_parts, new_parts, strict=True):
        kl = _sum_action_dims(th.distributions.kl_divergence(old, new))
        total = kl if total is None else total + kl
    assert total is not None
    return total


def sample_kl(log_prob_old: th.Tensor, log_prob_new: th.Tensor) -> th.Tensor:
    """
    Per-sample estimator of ``KL(pi_old || pi_new)`` from actions drawn from ``pi_old``.

    With ``r = pi_new(a|s) / pi_old(a|s)`` the estimate is ``(r - 1) - log r``: unbiased, because
    ``E_old[r] = 1``, and non-negative for every sample, because ``log r <= r - 1``.

    :param log_prob_old: log-probabilities of the actions under the old policy (joint over action dimensions)
    :param log_prob_new: log-probabilities of the same actions under the new policy
    :return: a tensor of the same shape as the inputs
    """
    log_ratio = log_prob_new - log_prob_old
    return th.expm1(log_ratio) - log_ratio


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


KL_ESTIMATORS = ("auto", "exact", "sample")


def policy_kl(
    old_distribution: Distribution,
    new_distribution: Distribution,
    actions: th.Tensor | None = None,
    log_prob_old: th.Tensor | None = None,
    estimator: str = "auto",
) -> th.Tensor:
    """
    ``KL(pi_old(.|s) || pi_new(.|s))`` per state, summed over action dimensions.

    :param old_distribution: the policy before the update (detached)
    :param new_distribution: the policy after the update
    :param actions: actions drawn from the old policy (needed by the sample estimator)
    :param log_prob_old: their log-probabilities under the old policy (needed by the sample estimator)
    :param estimator: ``"exact"`` (closed form), ``"sample"`` (``(r - 1) - log r``) or ``"auto"``
        (closed form where PyTorch has one, else the sample estimator)
    :return: a tensor of shape ``(n_states,)``
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")
    if estimator == "exact" or (estimator == "auto" and has_exact_kl(new_distribution)):
        return exact_kl(old_distribution, new_distribution)
    if actions is None or log_prob_old is None:
        raise ValueError("the sample KL estimator needs the actions and their old log-probabilities")
    return sample_kl(log_prob_old, new_distribution.log_prob(actions))


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
