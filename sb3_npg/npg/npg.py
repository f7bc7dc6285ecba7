"""
NPG: the natural policy gradient, with TRPO's line search as an option, and a critic fitted on its own.

:class:`NPG` holds the update: ``train()`` takes one natural-gradient step of the actor (``_policy_step``: the
conjugate-gradient solve on Fisher-vector products, ``_natural_gradient_step``, then ``_apply_step``, the line search),
fits the critic (``_fit_critic``: Adam or the GAE paper's trust region) and logs (``_log_update``). What every
algorithm shares (argument checks, schedules, ``learn()``) is in :class:`~sb3_npg.common.on_policy.KLOnPolicyAlgorithm`,
the math in :mod:`sb3_npg.common`. The ``_batch_*`` hooks read the rollout; the recurrent version
(:class:`~sb3_npg.RecurrentNPG`) overrides them.
"""

import copy
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import GymEnv, PyTorchObs, RolloutBufferSamples, Schedule
from stable_baselines3.common.utils import explained_variance
from typing_extensions import Unpack

from sb3_npg.common.batches import normalize_advantages, subsample_observations, weighted_mean
from sb3_npg.common.checks import check_float, check_int, report_skipped_update
from sb3_npg.common.conjugate_gradient import conjugate_gradient
from sb3_npg.common.fisher import FisherVectorProduct, MetricFn, fisher_vector_product, natural_step_size
from sb3_npg.common.kl import policy_kl
from sb3_npg.common.mlp_products import (
    ActorJacobian,
    actor_jacobian,
    critic_jacobian,
    mlp_gauss_newton_vector_product,
)
from sb3_npg.common.on_policy import (
    KL_TARGET,
    KLOnPolicyAlgorithm,
    OnPolicyArguments,
    document_parameters,
    takes_parameters_of,
)
from sb3_npg.common.parameters import differentiable_eval_mode, flat_concat, split_actor_critic, unflatten_like
from sb3_npg.common.schedules import kl_target
from sb3_npg.common.threads import with_update_threads
from sb3_npg.common.trust_region_critic import GaussNewtonFactory, trust_region_value_step

CRITIC_SOLVERS = ("adam", "trust_region")

# NPG's parameters, described (the others as in ``sb3_npg.common.on_policy.PARAMETERS``)
PARAMETERS: dict[str, str] = {
    "learning_rate": (
        "The learning rate of the value function's optimizer, it can be a function of the current progress remaining "
        "(from 1 to 0)"
    ),
    "batch_size": "Minibatch size of the value function's updates",
    "cg_max_steps": "Number of conjugate-gradient iterations (Fisher-vector products) per update",
    "cg_damping": "Damping ``lambda`` of the solve ``(F + lambda I) s = g``",
    "damped_step_size": (
        "Size the step with the damped quadratic ``s^T (F + lambda I) s`` instead of the undamped ``s^T F s``, as "
        "sb3-contrib's TRPO does: the quadratic KL model of the step then stays below ``target_kl``, the more so the "
        "stronger the damping. TRPO averages the KL over the ``d`` dimensions of a Box or MultiBinary action, so NPG "
        "with ``line_search=True``, ``damped_step_size=True``, ``target_kl=d * delta`` and ``cg_damping=d * lambda`` "
        "takes the step of TRPO with ``target_kl=delta`` and ``cg_damping=lambda``"
    ),
    "line_search": "Whether to backtrack the step on the measured KL and the surrogate (TRPO)",
    "line_search_shrinking_factor": "Step reduction factor of the line search (``theta_new = theta + factor^i * step``)",
    "line_search_max_iter": "Maximum number of steps tried by the line search",
    "n_critic_updates": (
        'Number of epochs of the value function per rollout (``critic_solver="adam"``), or of trust-region steps, '
        'each on the whole rollout (``critic_solver="trust_region"``)'
    ),
    "critic_solver": (
        'How the value function is fitted: ``"adam"``, epochs of Adam over minibatches (with ``learning_rate`` and '
        '``batch_size``), or ``"trust_region"``, the GAE paper\'s trust-region fit solved by conjugate gradient on '
        "Gauss-Newton products (https://arxiv.org/abs/1506.02438, section 5): each step minimises the squared error "
        "subject to ``mean((V - V_old)^2) / (2 sigma^2) <= critic_target_kl``, ``sigma^2`` being the old fit's mean "
        "squared error"
    ),
    "critic_target_kl": "The radius ``epsilon`` of the trust-region value fit",
    "critic_cg_max_steps": (
        "Number of conjugate-gradient iterations (Gauss-Newton products) per step of the trust-region value fit"
    ),
    "critic_cg_damping": "Damping of the trust-region value fit's solve ``(H + lambda I) s = g``",
    "target_kl": "Trust-region radius ``delta``: " + KL_TARGET,
    "sub_sampling_factor": (
        "Estimate the Fisher on every ``sub_sampling_factor``-th sample only (the gradient always uses the whole "
        "batch); at most ``n_steps * n_envs``"
    ),
    "critic_sub_sampling_factor": (
        'With ``critic_solver="trust_region"``, solve the value fit on the Gauss-Newton matrix of every '
        "``critic_sub_sampling_factor``-th sample only (the gradient, ``sigma^2`` and the step's length always use the "
        "whole batch); at most ``n_steps * n_envs``. The sub-sample's matrix is singular when the critic has more "
        'parameters than it has samples: pair it with ``critic_cg_damping``. Unused by ``critic_solver="adam"``'
    ),
}


class _HandWrittenCritic(NamedTuple):
    """The critic by hand: its values (no graph) on the rollout and the curvature sub-sample, and its products."""

    values: th.Tensor
    curvature_values: th.Tensor | None
    gauss_newton: GaussNewtonFactory
    values_vjp: Callable[[th.Tensor], th.Tensor]


class _PolicyStep(NamedTuple):
    """What one natural-gradient step did (all floats, already on the host)."""

    skipped: str | None  # reason the update was skipped, None when the step was taken
    kl: float = float("nan")
    predicted_kl: float = float("nan")
    step_size: float = float("nan")
    cg_residual: float = float("nan")
    cg_iterations: float = float("nan")
    surrogate_improvement: float = float("nan")
    expected_improvement: float = float("nan")
    gradient_norm: float = float("nan")
    line_search_success: float = float("nan")
    line_search_backtracks: float = float("nan")
    entropy: float = float("nan")
    std: float = float("nan")


class _CriticFit(NamedTuple):
    """What the critic's fit did (host numbers)."""

    value_loss: float = float("nan")  # Adam: mean loss of the minibatches fitted; trust region: loss after the last step
    minibatches: int = 0  # Adam: minibatches fitted; trust region: steps taken
    dropped_minibatches: int = 0  # minibatches (steps) dropped for a non-finite loss, gradient or step
    # Trust region only, means over the steps taken
    kl: float = float("nan")  # measured mean (V_new - V_old)^2 / (2 sigma^2)
    predicted_kl: float = float("nan")  # its quadratic model
    step_size: float = float("nan")
    cg_residual: float = float("nan")


@document_parameters(PARAMETERS)
class NPG(KLOnPolicyAlgorithm):
    """
    Natural Policy Gradient (NPG), with an optional TRPO line search.

    Each rollout gives one step ``theta += sqrt(2 delta / s^T F s) s`` along the natural gradient
    ``s = F^{-1} g``, solved by conjugate gradient with exact Fisher-vector products (``F`` is
    never formed). Without line search the quadratic model of the KL of the step equals ``target_kl``;
    with ``line_search=True`` the step is shrunk until the measured KL is within ``target_kl`` and the
    surrogate improves (TRPO), and is dropped if no shrunk step qualifies. The value function is then
    fitted on its own parameters only, by Adam or by the GAE paper's trust-region step (``critic_solver``).
    The policy step runs in eval mode (Dropout off, BatchNorm's running statistics: the deterministic policy
    that collected the rollout), the critic's fit in training mode (see :meth:`train`).

    Paper: https://papers.nips.cc/paper/2001/hash/4b86abe48d358ecf194c56c69108433e-Abstract.html (NPG),
    https://arxiv.org/abs/1502.05477 (TRPO)
    """

    @takes_parameters_of(KLOnPolicyAlgorithm.__init__)
    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        *,
        # The policy step: the solve, the step's size, the line search
        cg_max_steps: int = 10,
        cg_damping: float = 0.01,
        damped_step_size: bool = False,
        line_search: bool = False,
        line_search_shrinking_factor: float = 0.8,
        line_search_max_iter: int = 10,
        sub_sampling_factor: int = 1,
        # The critic's fit
        learning_rate: float | Schedule = 1e-3,
        batch_size: int = 128,
        n_critic_updates: int = 10,
        critic_solver: str = "adam",
        critic_target_kl: float = 0.01,
        critic_cg_max_steps: int = 10,
        critic_cg_damping: float = 0.0,
        critic_sub_sampling_factor: int = 1,
        _init_setup_model: bool = True,
        **kwargs: Unpack[OnPolicyArguments],
    ) -> None:
        check_int("cg_max_steps", cg_max_steps, 1)
        check_float("cg_damping", cg_damping, 0.0)
        if not isinstance(damped_step_size, bool):
            raise ValueError(f"damped_step_size must be True or False, got {damped_step_size!r}")
        check_float("line_search_shrinking_factor", line_search_shrinking_factor, 0.0, 1.0, False, False)
        check_int("line_search_max_iter", line_search_max_iter, 1)
        check_int("sub_sampling_factor", sub_sampling_factor, 1)
        check_int("n_critic_updates", n_critic_updates, 0)
        if critic_solver not in CRITIC_SOLVERS:
            raise ValueError(f"critic_solver must be one of {', '.join(map(repr, CRITIC_SOLVERS))}, got {critic_solver!r}")
        check_float("critic_target_kl", critic_target_kl, 0.0, low_inclusive=False)
        check_int("critic_cg_max_steps", critic_cg_max_steps, 1)
        check_float("critic_cg_damping", critic_cg_damping, 0.0)
        check_int("critic_sub_sampling_factor", critic_sub_sampling_factor, 1)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            batch_size=batch_size,
            ent_coef=0.0,  # no entropy bonus: the natural gradient step has its own trust region
            vf_coef=0.0,  # the value function is fitted separately
            max_grad_norm=0.0,
            **kwargs,
        )

        for name, factor, matrix in (
            ("sub_sampling_factor", sub_sampling_factor, "the Fisher"),
            ("critic_sub_sampling_factor", critic_sub_sampling_factor, "the critic's Gauss-Newton matrix"),
        ):
            if self.env is not None and factor > self.n_steps * self.env.num_envs:
                raise ValueError(
                    f"{name} must be <= n_steps * n_envs = {self.n_steps * self.env.num_envs}, the rollout's size "
                    f"({matrix} is estimated on every {name}-th sample of it), got {factor}"
                )
        self.cg_max_steps = cg_max_steps
        self.cg_damping = cg_damping
        self.damped_step_size = damped_step_size
        self.line_search = line_search
        self.line_search_shrinking_factor = line_search_shrinking_factor
        self.line_search_max_iter = line_search_max_iter
        self.n_critic_updates = n_critic_updates
        self.critic_solver = critic_solver
        self.critic_target_kl = critic_target_kl
        self.critic_cg_max_steps = critic_cg_max_steps
        self.critic_cg_damping = critic_cg_damping
        self.sub_sampling_factor = sub_sampling_factor
        self.critic_sub_sampling_factor = critic_sub_sampling_factor

        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        # The natural-gradient step owns every parameter that feeds the action distribution
        # (a shared features extractor included); the critic's optimizer gets only the rest.
        self.actor_params, self.critic_params = split_actor_critic(self.policy)
        self.policy.optimizer = self.policy.optimizer_class(  # type: ignore[call-arg]
            self.critic_params, lr=self.lr_schedule(1), **self.policy.optimizer_kwargs
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "actor_params", "critic_params"]

    @with_update_threads
    def train(self) -> None:
        """
        Update policy and value function using the currently gathered rollout buffer.

        Three phases: one natural-gradient step of the policy, the critic's fit, logging.

        The policy step runs in eval mode, the critic's fit in training mode (SB3's mode for ``train()``).
        The gradient, the Fisher and the line search's KL must all be of one deterministic function of the
        parameters, and it must be the policy that collected the rollout (in eval mode, as SB3 collects
        rollouts), so that the importance ratio is 1 and the KL 0 at the current parameters: in training mode
        every forward pass would draw a new Dropout mask, and BatchNorm would normalise each batch (the full
        rollout, the Fisher's sub-sample) with its own statistics. BatchNorm's running statistics are updated
        by the critic's fit, as by SB3's PPO; in a features extractor that the actor shares, this also moves
        the policy a little after its step.
        """
        self._update_learning_rate(self.policy.optimizer)
        target_kl = kl_target(self.target_kl, self._current_progress_remaining)

        # Policy step in eval mode (skipped, with the critic, if the rollout or the step is not finite)
        with differentiable_eval_mode(self.policy):
            rollout = next(iter(self.rollout_buffer.get(batch_size=None)))
            start = time.perf_counter()
            if self._rollout_is_finite():
                step = self._policy_step(rollout, target_kl)
            else:
                step = _PolicyStep(skipped="non-finite reward, advantage or return in the rollout")
            policy_step_time = time.perf_counter() - start

        # Critic fit in training mode
        self.policy.set_training_mode(True)
        critic = self._fit_critic(rollout) if step.skipped is None else _CriticFit()

        # Logging
        self._n_updates += 1
        self._log_update(step, critic, target_kl, policy_step_time)

    def _rollout_is_finite(self) -> bool:
        buffer = self.rollout_buffer
        return bool(
            np.isfinite(buffer.rewards).all() and np.isfinite(buffer.advantages).all() and np.isfinite(buffer.returns).all()
        )

    def _distribution(self, observations: PyTorchObs) -> Distribution:
        # ``get_distribution`` refills one shared object: copy it so that earlier results survive later calls
        return copy.copy(self.policy.get_distribution(observations))

    def _batch_distribution(self, batch: RolloutBufferSamples) -> Distribution:
        """The action distribution at the states of a batch of the rollout buffer (a hook for recurrent policies)."""
        return self._distribution(batch.observations)

    def _fisher_batch(self, rollout: RolloutBufferSamples, factor: int) -> RolloutBufferSamples:
        """The part of the rollout a Fisher (or Gauss-Newton matrix) is estimated on: every ``factor``-th sample."""
        return type(rollout)(*(subsample_observations(field, factor) for field in rollout))  # type: ignore[arg-type]

    def _batch_values(self, batch: RolloutBufferSamples) -> th.Tensor:
        """The critic's values at the states of a batch, shape ``(n,)`` (a hook for recurrent policies)."""
        return self.policy.predict_values(batch.observations).flatten()

    def _critic_loss(self, batch: RolloutBufferSamples) -> th.Tensor:
        """The value function's squared error to the returns on a minibatch."""
        return weighted_mean((batch.returns - self._batch_values(batch)) ** 2, self._batch_weights(batch))

    def _surrogate(self, distribution: Distribution, rollout: RolloutBufferSamples, advantages: th.Tensor) -> th.Tensor:
        log_prob = distribution.log_prob(self._actions(rollout))
        return weighted_mean(advantages * th.exp(log_prob - rollout.old_log_prob), self._batch_weights(rollout))

    def _policy_step(self, rollout: RolloutBufferSamples, target_kl: float) -> _PolicyStep:
        """One natural-gradient step of the actor (with TRPO's line search when enabled)."""
        advantages = rollout.advantages
        weights = self._batch_weights(rollout)
        if self.normalize_advantage:
            advantages = normalize_advantages(advantages, weights)
        # By hand for SB3's MLP policies: one forward pass serves the distribution, the gradient and the Fisher
        actor = self._hand_written_actor(rollout)
        with th.no_grad():
            old_distribution = self._batch_distribution(rollout) if actor is None else actor.distribution()
            old_surrogate = self._surrogate(old_distribution, rollout, advantages)

        full_step, solve_stats = self._natural_gradient_step(rollout, advantages, target_kl, actor)
        # One host synchronisation for all diagnostics of the solve
        values = th.stack(list(solve_stats.values())).tolist()
        stats = dict(zip(solve_stats, values, strict=True))
        grad_ok, step_ok = stats.pop("gradient_finite"), stats.pop("step_finite")
        stats.update(entropy=self._mean_entropy(old_distribution, weights), std=self._mean_std(old_distribution, weights))
        if not grad_ok:
            return _PolicyStep(skipped="non-finite policy gradient", **stats)
        if not step_ok:
            return _PolicyStep(skipped="non-finite or degenerate natural-gradient direction", **stats)
        return self._apply_step(rollout, advantages, old_distribution, old_surrogate, full_step, target_kl, stats)

    def _natural_gradient_step(
        self, rollout: RolloutBufferSamples, advantages: th.Tensor, target_kl: float, actor: ActorJacobian | None
    ) -> tuple[th.Tensor, dict[str, th.Tensor]]:
        """
        The full step ``sqrt(2 delta / s^T F s) s`` with ``s`` solving ``(F + lambda I) s = g``, and its diagnostics
        (``s^T (F + lambda I) s`` in place of ``s^T F s`` with ``damped_step_size``).

        ``actor``: the actor by hand on the whole rollout (SB3's MLP policies), else None (autograd). Everything stays
        on the device (no host synchronisation); the graphs die when this returns.
        """

        def surrogate(distribution: Distribution) -> th.Tensor:
            return self._surrogate(distribution, rollout, advantages)

        # The Fisher on a sub-sample of the batch, or on the batch itself
        fisher_batch = self._fisher_batch(rollout, self.sub_sampling_factor) if self.sub_sampling_factor > 1 else rollout
        fisher_weights = self._batch_weights(fisher_batch)
        if actor is not None:  # by hand, from the actor's forward pass (a second one on a sub-sample)
            gradient = actor.gradient(surrogate)
            fisher_actor = actor if fisher_batch is rollout else self._hand_written_actor(fisher_batch)
            assert fisher_actor is not None  # the same policy as the whole batch's
            fvp = fisher_actor.fisher_vector_product(self.cg_damping, fisher_weights)
        else:  # autograd's, the Fisher sharing the gradient's forward pass when on the whole batch
            distribution = self._batch_distribution(rollout)
            gradient = flat_concat(th.autograd.grad(surrogate(distribution), self.actor_params, retain_graph=True))
            fvp = self._autograd_fisher(fisher_batch, fisher_weights, distribution)
        solve = conjugate_gradient(fvp, gradient, max_iter=self.cg_max_steps)
        direction = solve.solution
        # Undamped quadratic form: damping regularises the solve, it shrinks the step only when asked to. The damped
        # one, s^T (F + lambda I) s, comes with the solve (from its residual), so it costs no product
        damped_sfs = solve.quadratic_form
        sfs = damped_sfs - self.cg_damping * (direction @ direction)
        step_size = natural_step_size(damped_sfs if self.damped_step_size else sfs, target_kl)
        full_step = step_size * direction
        stats = {
            "step_size": step_size,
            "predicted_kl": 0.5 * step_size**2 * sfs,
            "cg_residual": solve.residual_norm,
            "cg_iterations": solve.iterations.to(sfs.dtype),
            "expected_improvement": gradient @ full_step,
            "gradient_norm": gradient.norm(),
            "gradient_finite": th.isfinite(gradient).all().to(sfs.dtype),
            "step_finite": th.isfinite(full_step).all().to(sfs.dtype),
        }
        return full_step.detach(), {key: value.detach() for key, value in stats.items()}

    def _autograd_fisher(
        self, fisher_batch: RolloutBufferSamples, fisher_weights: th.Tensor | None, distribution: Distribution
    ) -> FisherVectorProduct:
        """The Fisher-vector product by autograd on ``fisher_batch`` (``distribution``: the whole rollout's)."""
        fisher_distribution = self._batch_distribution(fisher_batch) if self.sub_sampling_factor > 1 else distribution

        def fallback_mean_kl() -> th.Tensor:  # only for distributions without a closed-form Fisher
            with th.no_grad():
                fisher_old = self._batch_distribution(fisher_batch)
            actions, old_log_prob = self._actions(fisher_batch), fisher_batch.old_log_prob
            return weighted_mean(policy_kl(fisher_old, fisher_distribution, actions, old_log_prob), fisher_weights)

        return fisher_vector_product(
            self.actor_params, fisher_distribution, fallback_mean_kl, self.cg_damping, weights=fisher_weights
        )

    def _hand_written_products(self) -> bool:
        """
        Whether the batches reach the policy as NPG's own hooks pass them (a recurrent policy's do not): none of them
        is replaced on a subclass or on the instance.
        """
        hooks = ("_batch_distribution", "_batch_values", "_fisher_batch")
        return all(getattr(getattr(self, name), "__func__", None) is getattr(NPG, name) for name in hooks)

    def _hand_written_actor(self, batch: RolloutBufferSamples) -> ActorJacobian | None:
        """The actor of an SB3 MLP policy by hand at a batch's states (:mod:`~sb3_npg.common.mlp_products`), else None."""
        if not self._hand_written_products():
            return None
        return actor_jacobian(self.policy, batch.observations, self.actor_params)

    def _hand_written_critic(
        self, rollout: RolloutBufferSamples, curvature_batch: RolloutBufferSamples | None
    ) -> _HandWrittenCritic | None:
        """The critic by hand (:mod:`~sb3_npg.common.mlp_products`) on the rollout and the curvature sub-sample, else None."""
        if not self._hand_written_products():
            return None
        whole = critic_jacobian(self.policy, rollout.observations, self.critic_params)
        if whole is None:
            return None
        sample = whole
        if curvature_batch is not None:
            on_sample = critic_jacobian(self.policy, curvature_batch.observations, self.critic_params)
            assert on_sample is not None  # the same critic as the whole batch's
            sample = on_sample
        weights = self._batch_weights(rollout)
        sample_weights = weights if curvature_batch is None else self._batch_weights(curvature_batch)

        def gauss_newton(metric: MetricFn, damping: float, on_sub_sample: bool) -> FisherVectorProduct:
            jacobian, batch_weights = (sample, sample_weights) if on_sub_sample else (whole, weights)
            return mlp_gauss_newton_vector_product(self.critic_params, jacobian, metric, damping, batch_weights)

        def values_vjp(cotangent: th.Tensor) -> th.Tensor:
            return whole.flat_vjp(cotangent.reshape(whole.outputs.shape), self.critic_params)

        return _HandWrittenCritic(
            values=whole.outputs.flatten(),
            curvature_values=None if curvature_batch is None else sample.outputs.flatten(),
            gauss_newton=gauss_newton,
            values_vjp=values_vjp,
        )

    def _apply_step(
        self,
        rollout: RolloutBufferSamples,
        advantages: th.Tensor,
        old_distribution: Distribution,
        old_surrogate: th.Tensor,
        full_step: th.Tensor,
        target_kl: float,
        stats: dict[str, float],
    ) -> _PolicyStep:
        """Move the actor along ``full_step`` (shrinking it when line search is on); restore it when no step qualifies."""
        actions = self._actions(rollout)
        original = [p.detach().clone() for p in self.actor_params]
        step_parts = unflatten_like(full_step, self.actor_params)
        max_tries = self.line_search_max_iter if self.line_search else 1
        accepted, kl, improvement, tries = False, float("nan"), float("nan"), 0
        with th.no_grad():
            while tries < max_tries and not accepted:
                coefficient = self.line_search_shrinking_factor**tries
                tries += 1
                for param, start, delta in zip(self.actor_params, original, step_parts, strict=True):
                    param.copy_(start + coefficient * delta)
                new_distribution = self._batch_distribution(rollout)
                kl_tensor = weighted_mean(
                    policy_kl(old_distribution, new_distribution, actions, rollout.old_log_prob), self._batch_weights(rollout)
                )
                gain = self._surrogate(new_distribution, rollout, advantages) - old_surrogate
                kl, improvement = th.stack([kl_tensor, gain]).tolist()
                within_region = not self.line_search or (kl <= target_kl and improvement > 0)
                accepted = bool(np.isfinite(kl) and np.isfinite(improvement) and within_region)
            if not accepted:
                for param, start in zip(self.actor_params, original, strict=True):
                    param.copy_(start)

        ls_stats: dict[str, float] = {}
        if self.line_search:
            ls_stats = dict(line_search_success=float(accepted), line_search_backtracks=float(tries - 1))
        if not accepted and not self.line_search:
            return _PolicyStep(skipped="non-finite KL or surrogate after the step", kl=kl, **stats)
        if not accepted:
            # A failed line search is TRPO's normal outcome: no step, the critic still learns
            return _PolicyStep(skipped=None, kl=0.0, surrogate_improvement=0.0, **ls_stats, **stats)
        return _PolicyStep(skipped=None, kl=kl, surrogate_improvement=improvement, **ls_stats, **stats)

    def _fit_critic(self, rollout: RolloutBufferSamples) -> _CriticFit:
        """Fit the value function with the chosen ``critic_solver``, never touching the actor's parameters."""
        if self.critic_solver == "trust_region":
            return self._fit_critic_trust_region(rollout)
        return self._fit_critic_adam()

    def _fit_critic_trust_region(self, rollout: RolloutBufferSamples) -> _CriticFit:
        """
        ``n_critic_updates`` trust-region steps of the value function on the whole rollout (GAE paper), the
        Gauss-Newton matrix on every ``critic_sub_sampling_factor``-th sample.

        A step whose loss, gradient or direction is not finite is dropped (the critic keeps its parameters) and
        counted. One host synchronisation per step, after the solve, for its diagnostics.
        """
        weights = self._batch_weights(rollout)
        factor = self.critic_sub_sampling_factor
        curvature_batch = self._fisher_batch(rollout, factor) if factor > 1 else None
        curvature_weights = None if curvature_batch is None else self._batch_weights(curvature_batch)
        records: list[list[float]] = []
        dropped = 0
        for _ in range(self.n_critic_updates):
            # By hand for SB3's MLP critics (one forward pass, no graph), else autograd through the values
            hand = self._hand_written_critic(rollout, curvature_batch)
            if hand is None:
                values = self._batch_values(rollout)
                curvature_values = None if curvature_batch is None else self._batch_values(curvature_batch)
            else:
                values, curvature_values = hand.values, hand.curvature_values
            step = trust_region_value_step(
                self.critic_params,
                values,
                rollout.returns,
                self.critic_target_kl,
                cg_max_steps=self.critic_cg_max_steps,
                cg_damping=self.critic_cg_damping,
                weights=weights,
                curvature_values=curvature_values,
                curvature_weights=curvature_weights,
                gauss_newton=None if hand is None else hand.gauss_newton,
                values_vjp=None if hand is None else hand.values_vjp,
            )
            old_values = values.detach()
            del values, curvature_values, hand  # frees the graphs before the step is applied
            if not bool(step.finite):
                dropped += 1
                continue
            with th.no_grad():
                for param, delta in zip(self.critic_params, unflatten_like(step.step, self.critic_params), strict=True):
                    param.add_(delta)
                new_values = self._batch_values(rollout)
                kl = weighted_mean((new_values - old_values) ** 2, weights) / (2.0 * step.old_loss.clamp(min=1e-8))
                new_loss = weighted_mean((new_values - rollout.returns) ** 2, weights)
                records.append(th.stack([new_loss, kl, step.predicted_kl, step.step_size, step.cg_residual]).tolist())
        if not records:
            return _CriticFit(dropped_minibatches=dropped)
        means = np.mean(records, axis=0)
        return _CriticFit(
            value_loss=records[-1][0],
            minibatches=len(records),
            dropped_minibatches=dropped,
            kl=float(means[1]),
            predicted_kl=float(means[2]),
            step_size=float(means[3]),
            cg_residual=float(means[4]),
        )

    def _fit_critic_adam(self) -> _CriticFit:
        """
        Fit the value function on the returns with its own optimizer, never touching the actor's parameters.

        A minibatch whose loss or gradient is not finite is dropped (the critic is kept as it is for it) and
        counted. One host synchronisation per minibatch (a fused finiteness check of the loss and the whole
        gradient); the losses add up on the device and are read once, at the end.
        """
        loss_sum = th.zeros((), device=self.device)
        fitted, dropped = 0, 0
        for _ in range(self.n_critic_updates):
            for batch in self.rollout_buffer.get(self.batch_size):
                loss = self._critic_loss(batch)
                grads = th.autograd.grad(loss, self.critic_params, allow_unused=True, materialize_grads=True)
                if not th.isfinite(flat_concat([loss.detach(), *grads])).all():
                    dropped += 1
                    continue
                for param, grad in zip(self.critic_params, grads, strict=True):
                    param.grad = grad
                self.policy.optimizer.step()
                loss_sum += loss.detach()
                fitted += 1
        value_loss = loss_sum.item() / fitted if fitted else float("nan")
        return _CriticFit(value_loss=value_loss, minibatches=fitted, dropped_minibatches=dropped)

    @staticmethod
    def _mean_entropy(distribution: Distribution, weights: th.Tensor | None = None) -> float:
        entropy = distribution.entropy()
        return float("nan") if entropy is None else weighted_mean(entropy, weights).item()

    @staticmethod
    def _mean_std(distribution: Distribution, weights: th.Tensor | None = None) -> float:
        inner = distribution.distribution
        if not isinstance(inner, th.distributions.Normal):
            return float("nan")
        return weighted_mean(inner.scale.reshape(inner.scale.shape[0], -1).mean(dim=1), weights).item()

    def _log_update(self, step: _PolicyStep, critic: _CriticFit, target_kl: float, policy_step_time: float) -> None:
        self._skip_warned = report_skipped_update("NPG", step.skipped, self._n_updates, self.verbose, self._skip_warned)

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        self.logger.record("train/update_skipped", float(step.skipped is not None))
        self.logger.record("train/target_kl", target_kl)
        for key in ("kl", "predicted_kl", "step_size", "cg_residual", "cg_iterations", "surrogate_improvement"):
            self.logger.record(f"train/{key}", getattr(step, key))
        self.logger.record("train/expected_improvement", step.expected_improvement)
        self.logger.record("train/gradient_norm", step.gradient_norm)
        if self.line_search:
            self.logger.record("train/line_search_success", step.line_search_success)
            self.logger.record("train/line_search_backtracks", step.line_search_backtracks)
        self.logger.record("train/policy_step_time", policy_step_time)
        self.logger.record("train/value_loss", critic.value_loss)
        self.logger.record("train/critic_skipped_minibatches", critic.dropped_minibatches)
        if self.critic_solver == "trust_region":
            for key in ("kl", "predicted_kl", "step_size", "cg_residual"):
                self.logger.record(f"train/critic_{key}", getattr(critic, key))
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/entropy", step.entropy)
        if isinstance(self.action_space, spaces.Box):
            self.logger.record("train/std", step.std)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
