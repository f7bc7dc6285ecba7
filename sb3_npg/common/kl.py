"""KL divergences between an old and a new policy: the closed form and a sample estimator."""

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


def _closed_form_kl_known(dist_type: type) -> bool:
    # Not cached here: torch memoizes the lookup itself and clears its memo on every ``register_kl``,
    # so a pair registered after the first call is found.
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


KL_ESTIMATORS = ("auto", "exact", "sample")


def uses_closed_form_kl(distribution: Distribution, estimator: str) -> bool:
    """
    Whether :func:`policy_kl` with this estimator takes the closed form for this distribution.

    :param distribution: an SB3 distribution whose parameters have been set
    :param estimator: ``"exact"``, ``"sample"`` or ``"auto"`` (closed form where PyTorch has one)
    :return: True for the closed form, False for the sample estimator
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")
    return estimator == "exact" or (estimator == "auto" and has_exact_kl(distribution))


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
    if uses_closed_form_kl(new_distribution, estimator):
        return exact_kl(old_distribution, new_distribution)
    if actions is None or log_prob_old is None:
        raise ValueError("the sample KL estimator needs the actions and their old log-probabilities")
    return sample_kl(log_prob_old, new_distribution.log_prob(actions))
