"""
KLPPO: PPO with an adaptive KL penalty (PPO-Penalty), and controllers of the penalty and of the step size.

:class:`KLPPO` holds the update: ``train()`` runs the epochs of minibatch Adam on the penalised loss
(``_run_epochs``, ``minibatch_loss``), measures the KL of the whole rollout (``_rollout_kl``), lets the controller
adapt beta and the step size (``_adapt``; the rules are in :mod:`sb3_npg.klppo.controllers`) or restores an abandoned
update, and logs (``_log_update``). What every algorithm shares (argument checks, schedules, ``learn()``) is in
:class:`~sb3_npg.common.on_policy.KLOnPolicyAlgorithm`. The loss reads the policy through hooks
(``_evaluate_actions``, ``_old_distribution``, ``_new_distribution``) that the recurrent version
(:class:`~sb3_npg.RecurrentKLPPO`) overrides; with SB3's own policy methods and these hooks, one distribution per
minibatch serves both the surrogate and the KL (``_evaluate_minibatch``).
"""

from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import GymEnv, RolloutBufferSamples, Schedule
from stable_baselines3.common.utils import explained_variance
from typing_extensions import Unpack

from sb3_npg.common.batches import normalize_advantages, weighted_mean
from sb3_npg.common.checks import check_float, check_float_or_schedule, check_int, report_skipped_update
from sb3_npg.common.kl import KL_ESTIMATORS, exact_kl, policy_kl, sample_kl, uses_closed_form_kl
from sb3_npg.common.on_policy import (
    KL_TARGET,
    KLOnPolicyAlgorithm,
    OnPolicyArguments,
    document_parameters,
    takes_parameters_of,
)
from sb3_npg.common.parameters import split_actor_critic
from sb3_npg.common.policies import is_sb3s
from sb3_npg.common.schedules import as_schedule, kl_target
from sb3_npg.common.threads import with_update_threads
from sb3_npg.klppo.controllers import KL_ADAPTATIONS, next_kl_coef, tracking_lr_multiplier

# KLPPO's parameters, described (the others as in ``sb3_npg.common.on_policy.PARAMETERS``)
PARAMETERS: dict[str, str] = {
    "learning_rate": (
        "The learning rate, it can be a function of the current progress remaining (from 1 to 0). With "
        '``kl_adaptation="tracking"`` the actor\'s parameters use it times ``lr_multiplier``'
    ),
    "n_epochs": "Number of epochs over the rollout buffer per update",
    "clip_range": (
        "Clipping parameter of the probability ratio, added on top of the penalty; it can be a function of the "
        "current progress remaining (from 1 to 0). ``None`` (default): no clipping"
    ),
    "clip_range_vf": (
        "Clipping parameter for the value function, it can be a function of the current progress remaining (from 1 "
        "to 0). ``None`` (default): no clipping. It depends on the reward scaling"
    ),
    "normalize_advantage": "Whether to normalize the advantages of each minibatch",
    "target_kl": "The penalty's target ``d_targ``: " + KL_TARGET,
    "kl_coef": "Initial KL-penalty coefficient beta (``model.kl_coef`` holds the current one)",
    "kl_adaptation": (
        'How beta (and the step size) adapt between updates: ``"tracking"``, ``"adaptive"``, ``"dual"`` or '
        '``"fixed"`` (see above)'
    ),
    "kl_coef_min": 'Lower bound of beta under the ``"tracking"``, ``"adaptive"`` and ``"dual"`` rules',
    "kl_coef_max": 'Upper bound of beta under the ``"tracking"``, ``"adaptive"`` and ``"dual"`` rules',
    "kl_dual_lr": 'Step size of the ``"dual"`` rule',
    "kl_early_stop": (
        "Stop the epochs once the KL of a minibatch exceeds this multiple of ``target_kl``; ``None``: never stop early"
    ),
    "kl_estimator": (
        '``"auto"`` (closed form where SB3\'s distribution has one, else the sample estimator), ``"exact"`` or '
        '``"sample"`` (``(r - 1) - log r``)'
    ),
    "kl_lr_gain": (
        'Exponent of ``progress * target / kl`` in the ``"tracking"`` step-size rule (0.5: the one-step correction; '
        "0: no step-size control)"
    ),
    "kl_lr_min": 'Lower bound of the ``"tracking"`` learning-rate multiplier (a multiple of ``learning_rate``)',
    "kl_lr_max": 'Upper bound of the ``"tracking"`` learning-rate multiplier (a multiple of ``learning_rate``)',
}


class _MinibatchLoss(NamedTuple):
    """The terms of the loss on one minibatch (tensors; ``loss`` and ``kl_penalty`` carry gradients)."""

    loss: th.Tensor
    policy_gradient_loss: th.Tensor
    kl: th.Tensor
    kl_penalty: th.Tensor
    value_loss: th.Tensor
    entropy_loss: th.Tensor
    approx_kl: th.Tensor
    clip_fraction: th.Tensor


@dataclass
class _EpochsResult:
    """What the epochs of minibatch updates did (host floats, one entry per optimizer step)."""

    losses: list[float] = field(default_factory=list)
    policy_gradient_losses: list[float] = field(default_factory=list)
    minibatch_kls: list[float] = field(default_factory=list)
    kl_penalties: list[float] = field(default_factory=list)
    value_losses: list[float] = field(default_factory=list)
    entropy_losses: list[float] = field(default_factory=list)
    clip_fractions: list[float] = field(default_factory=list)
    approx_kls: list[float] = field(default_factory=list)  # last epoch only, as SB3 PPO logs it
    epochs: int = 0
    steps: int = 0  # optimizer steps taken
    planned_steps: int = 0  # optimizer steps that n_epochs full epochs take
    early_stopped: bool = False
    skipped: str | None = None  # reason the update was abandoned, None when it was kept


@document_parameters(PARAMETERS)
class KLPPO(KLOnPolicyAlgorithm):
    """
    Proximal Policy Optimization with an adaptive KL penalty (PPO-Penalty).

    Each rollout gives ``n_epochs`` epochs of minibatch Adam on
    ``-L(theta') + beta * KL(pi_old || pi_new) + ent_coef * entropy_loss + vf_coef * value_loss``,
    where ``L`` is the importance-weighted surrogate, unclipped by default (``clip_range=None``); a
    ``clip_range`` adds PPO's clipping on top of the penalty. The KL is the closed form where SB3's
    distribution has one (summed over action dimensions, averaged over states), else the estimator
    ``(r - 1) - log r``. After the epochs, the KL ``d`` of the whole rollout is measured and the
    controller chosen by ``kl_adaptation`` updates beta (``model.kl_coef``) once:

    * ``"adaptive"`` (default): the PPO paper's rule, ``d < target / 1.5`` halves beta, ``d > 1.5 target`` doubles it;
      chosen as the default because it learned best where a user gets the defaults (see the KLPPO page of the
      documentation for the evidence); a model saved with another controller keeps it when loaded;
    * ``"dual"``: ``beta <- max(0, beta + kl_dual_lr * (d - target))``, dual ascent on the Lagrange
      multiplier of ``KL <= target``;
    * ``"fixed"``: beta stays ``kl_coef``;
    * ``"tracking"``: the paper's rule on beta, plus a step-size controller, because once
      beta is small the optimiser's step, not beta, limits how far the policy moves, and how far a
      given step moves the policy varies a hundredfold from one rollout to the next (with the
      consistency of the gradient across minibatches). The actor's parameters (those that feed the
      action distribution) learn at ``learning_rate * model.lr_multiplier``, the critic's at
      ``learning_rate``. The KL of an update should follow a ramp, ``progress * target`` after a
      fraction ``progress`` of the update's optimizer steps. After every epoch but the last, and again
      after the update, the KL ``k`` of the whole rollout is measured and
      ``lr_multiplier *= clip((progress * target / k) ** kl_lr_gain, 1/2, 2)``, kept within
      ``[kl_lr_min, kl_lr_max]`` (while the step limits the update, the KL grows like the square of the
      step, so a gain of 0.5 is the one-step correction). The correction within the update raises a
      step that moves the policy too little before the epochs run out; the one after an early stop
      (small ``progress``) lowers the step for the next update. The early stop caps an overshoot; its
      default, ``1.25 * target``, lies inside the paper rule's dead band, so that an update stopped at
      the cap does not double beta.

    In every mode the epochs stop early once the KL of the current minibatch, measured before its
    step, exceeds ``kl_early_stop * target_kl`` (unless ``kl_early_stop=None``). Beta changes only
    between updates; beta and the multiplier are plain attributes, saved and loaded with the model.
    An update whose loss, gradient or measured KL is not finite is abandoned: the parameters, beta and
    the multiplier are kept (the optimizer's moments are not rolled back), ``train/update_skipped``
    is 1 and training goes on.

    Logged under ``train/``: ``kl`` (measured after the update), ``kl_coef`` and ``lr_multiplier``
    (after the adaptation, the values the next update uses), ``learning_rate`` (the actor's, used by
    this update), ``target_kl``, ``policy_gradient_loss``, ``kl_penalty``, ``minibatch_kl``,
    ``value_loss``, ``entropy_loss``, ``approx_kl``, ``loss``, ``clip_fraction`` and ``clip_range``
    (when clipping), ``clip_range_vf``, ``explained_variance``, ``std``, ``n_epochs``, ``early_stop``,
    ``update_skipped``, ``n_updates``.

    Paper: https://arxiv.org/abs/1707.06347 (section 4, "Adaptive KL Penalty Coefficient")
    """

    # The arguments that may be schedules, stored as SB3's FloatSchedule (the clip ranges may be None)
    _schedule_arguments: ClassVar[tuple[str, ...]] = ("target_kl", "clip_range", "clip_range_vf")

    @takes_parameters_of(KLOnPolicyAlgorithm.__init__)
    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        *,
        # The epochs of minibatch Adam (SB3's PPO's)
        learning_rate: float | Schedule = 3e-4,
        batch_size: int = 64,
        n_epochs: int = 10,
        clip_range: float | Schedule | None = None,
        clip_range_vf: float | Schedule | None = None,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        # The KL penalty and its controller (of beta, or of the actor's step size)
        kl_coef: float = 1.0,
        kl_adaptation: str = "adaptive",
        kl_coef_min: float = 1e-3,
        kl_coef_max: float = 1e3,
        kl_dual_lr: float = 100.0,
        kl_lr_gain: float = 0.5,
        kl_lr_min: float = 0.01,
        kl_lr_max: float = 10.0,
        # How the KL is measured, and when the epochs stop
        kl_estimator: str = "auto",
        kl_early_stop: float | None = 1.25,
        _init_setup_model: bool = True,
        **kwargs: Unpack[OnPolicyArguments],
    ) -> None:
        check_int("n_epochs", n_epochs, 1)
        if clip_range is not None:
            check_float_or_schedule("clip_range", clip_range, low=0.0, low_inclusive=False)
        if clip_range_vf is not None:
            check_float_or_schedule("clip_range_vf", clip_range_vf, low=0.0, low_inclusive=False)
        check_float("ent_coef", ent_coef, low=0.0)
        check_float("vf_coef", vf_coef, low=0.0)
        check_float("max_grad_norm", max_grad_norm, low=0.0, low_inclusive=False)
        if kl_adaptation not in KL_ADAPTATIONS:
            raise ValueError(f"kl_adaptation must be one of {KL_ADAPTATIONS}, got {kl_adaptation!r}")
        check_float("kl_coef_min", kl_coef_min, low=0.0)
        check_float("kl_coef_max", kl_coef_max, low=0.0)
        if kl_coef_min > kl_coef_max:
            raise ValueError(
                f"kl_coef_min and kl_coef_max must satisfy kl_coef_min <= kl_coef_max, got {kl_coef_min} > {kl_coef_max}"
            )
        check_float("kl_coef", kl_coef, low=0.0)
        if kl_adaptation != "fixed":
            check_float("kl_coef", kl_coef, low=kl_coef_min, high=kl_coef_max)
        check_float("kl_dual_lr", kl_dual_lr, low=0.0)
        check_float("kl_lr_gain", kl_lr_gain, low=0.0, high=1.0)
        check_float("kl_lr_min", kl_lr_min, low=0.0, high=1.0, low_inclusive=False)
        check_float("kl_lr_max", kl_lr_max, low=1.0)
        if kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS}, got {kl_estimator!r}")
        if kl_early_stop is not None:
            check_float("kl_early_stop", kl_early_stop, low=0.0, low_inclusive=False)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            batch_size=batch_size,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            **kwargs,
        )
        if self.normalize_advantage:  # the advantages are normalized over each minibatch
            check_int("batch_size", batch_size, 2)

        self.n_epochs = n_epochs
        self.clip_range = None if clip_range is None else as_schedule(clip_range)
        self.clip_range_vf = None if clip_range_vf is None else as_schedule(clip_range_vf)
        self.kl_adaptation = kl_adaptation
        self.kl_coef_min = kl_coef_min
        self.kl_coef_max = kl_coef_max
        self.kl_dual_lr = kl_dual_lr
        self.kl_early_stop = kl_early_stop
        self.kl_estimator = kl_estimator
        self.kl_lr_gain = kl_lr_gain
        self.kl_lr_min = kl_lr_min
        self.kl_lr_max = kl_lr_max
        # Controller state: plain floats, so that ``save`` pickles them and ``load`` restores them
        self.kl_coef = float(kl_coef)
        self.lr_multiplier = 1.0

        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        # Two parameter groups, so that the step-size controller scales the actor's learning rate only:
        # group 0 holds every parameter that feeds the action distribution (a shared features
        # extractor included), group 1 the critic's own parameters.
        groups = split_actor_critic(self.policy)
        lr = self.lr_schedule(1)
        self.policy.optimizer = self.policy.optimizer_class(
            [{"params": group, "lr": lr} for group in groups if group], **self.policy.optimizer_kwargs
        )
        # pi_old: a frozen policy of the same architecture, given the current weights at the start of every
        # update (built under a forked RNG, so that the model's random stream is the one SB3 PPO would have)
        with th.random.fork_rng(devices=[]):
            old_policy = self.policy_class(
                self.observation_space, self.action_space, self.lr_schedule, use_sde=self.use_sde, **self.policy_kwargs
            )
        assert isinstance(old_policy, ActorCriticPolicy)
        self._old_policy = old_policy.to(self.device)
        self._old_policy.set_training_mode(False)
        self._old_policy.requires_grad_(False)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_old_policy"]

    @with_update_threads
    def train(self) -> None:
        """
        Update policy using the currently gathered rollout buffer.

        Four phases: epochs of minibatch Adam on the penalised loss, the KL of the whole rollout,
        the controller's update of beta and the step size (or the restore of a skipped update), logging.
        """
        self.policy.set_training_mode(True)
        progress = self._current_progress_remaining
        target_kl = kl_target(self.target_kl, progress)
        clip_range = None if self.clip_range is None else self.clip_range(progress)
        clip_range_vf = None if self.clip_range_vf is None else self.clip_range_vf(progress)
        lr_multiplier = self.lr_multiplier
        learning_rate = self._set_learning_rates()
        self._snapshot_policy()

        # Epochs of minibatch updates
        result = self._run_epochs(target_kl, clip_range, clip_range_vf)

        # KL of the whole rollout, after the update
        kl = float("nan")
        if result.skipped is None:
            kl = self._rollout_kl()
            if not np.isfinite(kl):
                result.skipped = "non-finite KL after the update"

        # Controller update, or the restore of an abandoned update
        if result.skipped is None:
            self._adapt(kl, target_kl, max(result.steps, 1) / result.planned_steps)
        else:
            self.policy.load_state_dict(self._old_policy.state_dict())
            self.lr_multiplier = lr_multiplier
            self._set_learning_rates()

        # Logging
        self._n_updates += result.epochs
        self._log_update(result, kl, target_kl, learning_rate, clip_range, clip_range_vf)

    def _set_learning_rates(self) -> float:
        """Set the optimizer's learning rates from the schedule and the multiplier; return the actor's."""
        learning_rate = self.lr_schedule(self._current_progress_remaining)
        actor_group, *critic_groups = self.policy.optimizer.param_groups
        actor_group["lr"] = learning_rate * self.lr_multiplier
        for group in critic_groups:
            group["lr"] = learning_rate
        return learning_rate * self.lr_multiplier

    def _snapshot_policy(self) -> None:
        """Make ``pi_old`` a copy of the current policy (dtype and device included)."""
        state = {key: value.detach().clone() for key, value in self.policy.state_dict().items()}
        self._old_policy.load_state_dict(state, assign=True)

    def _run_epochs(self, target_kl: float, clip_range: float | None, clip_range_vf: float | None) -> _EpochsResult:
        """
        ``n_epochs`` passes of minibatch Adam, stopped early on a large KL, abandoned on a non-finite value.

        With the ``"tracking"`` controller, the KL of the whole rollout is measured after each epoch but the
        last and the actor's learning rate is rescaled so that the KL follows its ramp to the target.
        """
        result = _EpochsResult()
        minibatches_per_epoch = -(-self.rollout_buffer.buffer_size * self.rollout_buffer.n_envs // self.batch_size)
        result.planned_steps = self.n_epochs * minibatches_per_epoch
        for epoch in range(self.n_epochs):
            result.epochs = epoch + 1
            self._run_epoch(result, target_kl, clip_range, clip_range_vf)
            if result.skipped is not None or result.early_stopped or epoch == self.n_epochs - 1:
                break
            if self.kl_adaptation == "tracking":
                kl = self._rollout_kl()
                if not np.isfinite(kl):
                    result.skipped = "non-finite KL between epochs"
                    break
                self._track_step_size(kl, target_kl, result.steps / result.planned_steps)
        return result

    def _run_epoch(
        self, result: _EpochsResult, target_kl: float, clip_range: float | None, clip_range_vf: float | None
    ) -> None:
        """One pass over the rollout buffer in minibatches; records into ``result`` and flags a stop or a skip there."""
        result.approx_kls = []
        for batch in self.rollout_buffer.get(self.batch_size):
            terms = self.minibatch_loss(batch, clip_range, clip_range_vf)
            # One host synchronisation for every number of this minibatch
            values = th.stack([term.detach().to(th.float64) for term in terms]).tolist()
            loss, pg_loss, kl, kl_penalty, value_loss, entropy_loss, approx_kl, clip_fraction = values
            if not np.isfinite(values).all():
                result.skipped = "non-finite loss or KL"
                return
            if self.kl_early_stop is not None and kl > self.kl_early_stop * target_kl:
                result.early_stopped = True
                if self.verbose >= 1:
                    # Epochs counted from 1, as train/n_epochs counts them
                    print(
                        f"Early stopping at epoch {result.epochs} of {self.n_epochs}: minibatch KL {kl:.3g} > "
                        f"kl_early_stop * target_kl = {self.kl_early_stop:g} * {target_kl:.3g} = "
                        f"{self.kl_early_stop * target_kl:.3g}"
                    )
                return

            self.policy.optimizer.zero_grad()
            terms.loss.backward()
            grad_norm = th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            if not th.isfinite(grad_norm):
                result.skipped = "non-finite gradient"
                return
            self.policy.optimizer.step()

            result.steps += 1
            result.losses.append(loss)
            result.policy_gradient_losses.append(pg_loss)
            result.minibatch_kls.append(kl)
            result.kl_penalties.append(kl_penalty)
            result.value_losses.append(value_loss)
            result.entropy_losses.append(entropy_loss)
            result.approx_kls.append(approx_kl)
            if clip_range is not None:
                result.clip_fractions.append(clip_fraction)

    def minibatch_loss(
        self, batch: RolloutBufferSamples, clip_range: float | None, clip_range_vf: float | None
    ) -> _MinibatchLoss:
        """
        The loss of one minibatch and its terms, at the current parameters and the current beta.

        ``loss = policy_gradient_loss + kl_penalty + ent_coef * entropy_loss + vf_coef * value_loss``,
        where ``kl_penalty = kl_coef * kl`` and ``kl`` is the mean over the minibatch's states of
        ``KL(pi_old || pi_new)``. With ``kl_coef=0`` and a ``clip_range`` it is SB3 PPO's loss.

        :param batch: a minibatch of the rollout buffer
        :param clip_range: the ratio's clipping parameter, ``None`` for no clipping
        :param clip_range_vf: the value function's clipping parameter, ``None`` for no clipping
        :return: the loss and its terms; ``clip_fraction`` is 0 without clipping
        """
        actions = self._actions(batch)
        values, log_prob, entropy, distribution = self._evaluate_minibatch(batch, actions)
        values = values.flatten()
        weights = self._batch_weights(batch)

        advantages = batch.advantages
        if self.normalize_advantage and len(advantages) > 1:
            advantages = normalize_advantages(advantages, weights)

        # Surrogate, clipped when asked
        log_ratio = log_prob - batch.old_log_prob
        ratio = th.exp(log_ratio)
        if clip_range is None:
            policy_gradient_loss = -weighted_mean(advantages * ratio, weights)
            clip_fraction = th.zeros((), device=ratio.device)
        else:
            clipped_ratio = th.clamp(ratio, 1 - clip_range, 1 + clip_range)
            policy_gradient_loss = -weighted_mean(th.min(advantages * ratio, advantages * clipped_ratio), weights)
            clip_fraction = weighted_mean(((ratio - 1).abs() > clip_range).float(), weights)

        # KL penalty
        kl = weighted_mean(self._penalty_kl(batch, actions, log_prob, distribution), weights)
        kl_penalty = self.kl_coef * kl

        # Value function, clipped around the old values when asked
        if clip_range_vf is not None:
            values = batch.old_values + th.clamp(values - batch.old_values, -clip_range_vf, clip_range_vf)
        value_loss = weighted_mean((batch.returns - values) ** 2, weights)

        # Entropy bonus (from the log-probabilities where the distribution has no closed form)
        entropy_loss = weighted_mean(log_prob if entropy is None else -entropy, weights)

        loss = policy_gradient_loss + kl_penalty + self.ent_coef * entropy_loss + self.vf_coef * value_loss
        with th.no_grad():
            approx_kl = weighted_mean(th.expm1(log_ratio) - log_ratio, weights)
        return _MinibatchLoss(loss, policy_gradient_loss, kl, kl_penalty, value_loss, entropy_loss, approx_kl, clip_fraction)

    def _penalty_kl(
        self,
        batch: RolloutBufferSamples,
        actions: th.Tensor,
        log_prob: th.Tensor,
        distribution: Distribution | None = None,
    ) -> th.Tensor:
        """
        ``KL(pi_old || pi_new)`` per state of the minibatch, through the policy's public methods.

        The closed form compares ``get_distribution`` of the old policy with the current policy's distribution
        (``distribution`` when the loss built it already, else ``get_distribution``); the sample estimator needs only
        ``log_prob``, the log-probabilities the surrogate uses.
        """
        with th.no_grad():
            old_distribution = self._old_distribution(batch)
        if uses_closed_form_kl(old_distribution, self.kl_estimator):
            return exact_kl(old_distribution, self._new_distribution(batch) if distribution is None else distribution)
        return sample_kl(batch.old_log_prob, log_prob)

    def _evaluate_minibatch(
        self, batch: RolloutBufferSamples, actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None, Distribution | None]:
        """
        Values, log-probabilities of ``actions``, entropy and, when it was built, the current action distribution.

        A policy that builds them SB3's way (its ``evaluate_actions``, ``get_distribution`` and ``predict_values``
        are SB3's) gives them by ``get_distribution`` and ``predict_values``: the same numbers as
        ``evaluate_actions``, and one distribution that serves both the surrogate and the closed-form KL, so the
        actor runs forward (and backward) once per minibatch instead of twice. Any other policy, or a subclass that
        replaces the hooks (the recurrent one), goes through ``evaluate_actions`` as it is written, and the KL builds
        its own distribution.
        """
        if self._builds_distribution_once():
            distribution = self._new_distribution(batch)
            values = self.policy.predict_values(batch.observations)
            return values, distribution.log_prob(actions), distribution.entropy(), distribution
        values, log_prob, entropy = self._evaluate_actions(batch, actions)
        return values, log_prob, entropy, None

    def _builds_distribution_once(self) -> bool:
        """Whether the policy and the hooks are SB3's and KLPPO's own (see :meth:`_evaluate_minibatch`)."""
        hooks = (type(self)._evaluate_actions, type(self)._new_distribution)
        if hooks != (KLPPO._evaluate_actions, KLPPO._new_distribution) or not isinstance(self.policy, ActorCriticPolicy):
            return False
        return all(is_sb3s(self.policy, name) for name in ("evaluate_actions", "get_distribution", "predict_values"))

    def _evaluate_actions(
        self, batch: RolloutBufferSamples, actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """Values, log-probabilities of ``actions`` and entropy at the states of a minibatch (a hook for recurrent ones)."""
        return self.policy.evaluate_actions(batch.observations, actions)

    def _old_distribution(self, batch: RolloutBufferSamples) -> Distribution:
        """``pi_old``'s action distribution at the states of a minibatch."""
        return self._old_policy.get_distribution(batch.observations)

    def _new_distribution(self, batch: RolloutBufferSamples) -> Distribution:
        """The current policy's action distribution at the states of a minibatch."""
        return self.policy.get_distribution(batch.observations)

    def _rollout_kl(self) -> float:
        """
        ``KL(pi_old || pi_new)`` averaged over every state of the rollout, in minibatch-sized chunks.

        Measured in eval mode, on the policy as it acts in rollouts and ``predict`` (Dropout off, BatchNorm's
        running statistics), then the policy goes back to training mode.
        """
        total = th.zeros((), dtype=th.float64, device=self.device)
        count = 0.0
        self.policy.set_training_mode(False)
        with th.no_grad():
            for batch in self.rollout_buffer.get(self.batch_size):
                new_distribution = self._new_distribution(batch)
                old_distribution = self._old_distribution(batch)
                actions = self._actions(batch)
                kl = policy_kl(old_distribution, new_distribution, actions, batch.old_log_prob, self.kl_estimator)
                weights = self._batch_weights(batch)
                if weights is not None:
                    kl = kl * weights
                total += kl.to(th.float64).sum()
                count += kl.shape[0] if weights is None else weights.sum().item()
        self.policy.set_training_mode(True)
        return total.item() / count

    def _adapt(self, kl: float, target_kl: float, progress: float) -> None:
        """
        Update beta (and, when tracking, the learning-rate multiplier) from the KL of the whole update.

        :param kl: the KL of the whole rollout after the update
        :param target_kl: the target
        :param progress: fraction of the planned optimizer steps the update took (less than 1 after an early stop)
        """
        self.kl_coef = next_kl_coef(
            self.kl_adaptation, self.kl_coef, kl, target_kl, self.kl_dual_lr, self.kl_coef_min, self.kl_coef_max
        )
        if self.kl_adaptation == "tracking":
            self._track_step_size(kl, target_kl, progress)

    def _track_step_size(self, kl: float, target_kl: float, progress: float) -> None:
        """Rescale the actor's learning rate so that the KL follows the ramp ``progress * target_kl``."""
        self.lr_multiplier = tracking_lr_multiplier(
            self.lr_multiplier,
            kl,
            target_kl,
            progress=progress,
            gain=self.kl_lr_gain,
            multiplier_min=self.kl_lr_min,
            multiplier_max=self.kl_lr_max,
        )
        self._set_learning_rates()

    def _log_update(
        self,
        result: _EpochsResult,
        kl: float,
        target_kl: float,
        learning_rate: float,
        clip_range: float | None,
        clip_range_vf: float | None,
    ) -> None:
        self._skip_warned = report_skipped_update("KLPPO", result.skipped, self._n_updates, self.verbose, self._skip_warned)

        def mean(values: list[float]) -> float:
            return float(np.mean(values)) if values else float("nan")

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        record = self.logger.record
        record("train/update_skipped", float(result.skipped is not None))
        record("train/kl", kl)
        record("train/target_kl", target_kl)
        record("train/kl_coef", self.kl_coef)
        record("train/lr_multiplier", self.lr_multiplier)
        record("train/learning_rate", learning_rate)
        record("train/policy_gradient_loss", mean(result.policy_gradient_losses))
        record("train/kl_penalty", mean(result.kl_penalties))
        record("train/minibatch_kl", mean(result.minibatch_kls))
        record("train/approx_kl", mean(result.approx_kls))
        record("train/value_loss", mean(result.value_losses))
        record("train/entropy_loss", mean(result.entropy_losses))
        record("train/loss", result.losses[-1] if result.losses else float("nan"))
        record("train/explained_variance", explained_var)
        record("train/n_epochs", result.epochs)
        record("train/early_stop", float(result.early_stopped))
        if clip_range is not None:
            record("train/clip_fraction", mean(result.clip_fractions))
            record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            record("train/clip_range_vf", clip_range_vf)
        if hasattr(self.policy, "log_std"):
            record("train/std", th.exp(self.policy.log_std).mean().item())
        record("train/n_updates", self._n_updates, exclude="tensorboard")
