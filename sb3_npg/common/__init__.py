"""
What the algorithms of sb3-npg share, a module per theme.

- The math, as pure functions tested against brute force: :mod:`~sb3_npg.common.fisher` (Fisher-vector products),
  :mod:`~sb3_npg.common.mlp_products` (the same products by hand for SB3's MLP heads),
  :mod:`~sb3_npg.common.conjugate_gradient` (the solver and the trust-region step size),
  :mod:`~sb3_npg.common.kl` (KL estimators), :mod:`~sb3_npg.common.trust_region_critic` (the critic's trust-region
  step on Gauss-Newton products).
- Rollout data: :mod:`~sb3_npg.common.batches` (weighted means, advantage normalisation, actions, sub-sampling) and,
  for LSTM policies, :mod:`~sb3_npg.common.lstm` (padded sequences).
- The model: :mod:`~sb3_npg.common.policies` (feed-forward policies), :mod:`~sb3_npg.common.recurrent_policies`
  (LSTM policies), :mod:`~sb3_npg.common.parameters` (flat vectors, the actor's parameters),
  :mod:`~sb3_npg.common.recurrent` (the recurrent algorithms' rollouts).
- The algorithms' base: :mod:`~sb3_npg.common.on_policy` (:class:`~sb3_npg.common.on_policy.KLOnPolicyAlgorithm`, the
  SB3 on-policy algorithm that NPG and KLPPO derive from: the arguments they share, their schedules, the rollout
  batch hooks, ``learn()``, and the parameters' descriptions of the classes' docstrings).
- The algorithms' plumbing: :mod:`~sb3_npg.common.schedules`, :mod:`~sb3_npg.common.threads`,
  :mod:`~sb3_npg.common.checks` (argument checks, skipped updates) and :mod:`~sb3_npg.common.vec_env` (SB3's
  ``DummyVecEnv`` with a cheaper copy of each step's infos, for ``sb3-npg train``).

KLPPO's penalty controllers live with KLPPO, in :mod:`sb3_npg.klppo.controllers`.
"""
