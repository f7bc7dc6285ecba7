"""
Every numeric constructor argument of NPG and KLPPO against bad values.

Each case either raises a ``ValueError`` that names the argument, or is in ``MEANINGFUL``: a value the
argument's documentation gives a meaning to. ``seed`` and ``verbose`` belong to SB3 and keep its behaviour.
"""

import math
import re

import pytest
from stable_baselines3.common.env_util import make_vec_env

from sb3_npg import KLPPO, NPG

VALUES = {"negative": -1, "zero": 0, "nan": math.nan, "+inf": math.inf, "-inf": -math.inf, "string": "0.1", "1e12": 1e12}

NUMERIC_ARGUMENTS = {
    NPG: [
        "learning_rate",
        "n_steps",
        "batch_size",
        "gamma",
        "cg_max_steps",
        "cg_damping",
        "line_search_shrinking_factor",
        "line_search_max_iter",
        "n_critic_updates",
        "critic_target_kl",
        "critic_cg_max_steps",
        "critic_cg_damping",
        "gae_lambda",
        "sde_sample_freq",
        "target_kl",
        "sub_sampling_factor",
        "stats_window_size",
        "update_threads",
    ],
    KLPPO: [
        "learning_rate",
        "n_steps",
        "batch_size",
        "n_epochs",
        "gamma",
        "gae_lambda",
        "clip_range",
        "clip_range_vf",
        "ent_coef",
        "vf_coef",
        "max_grad_norm",
        "sde_sample_freq",
        "target_kl",
        "kl_coef",
        "kl_coef_min",
        "kl_coef_max",
        "kl_dual_lr",
        "kl_early_stop",
        "kl_lr_gain",
        "kl_lr_min",
        "kl_lr_max",
        "stats_window_size",
        "update_threads",
    ],
}

# (argument, value name) pairs that are meaningful, with the meaning. Large finite values are accepted where
# the argument has no upper bound; non-finite values and strings never are.
_UNBOUNDED = (
    "learning_rate",
    "target_kl",
    "cg_damping",
    "critic_target_kl",
    "critic_cg_damping",
    "clip_range",
    "clip_range_vf",
    "ent_coef",
    "vf_coef",
)
_UNBOUNDED += ("max_grad_norm", "kl_coef_max", "kl_dual_lr", "kl_early_stop", "kl_lr_max")
MEANINGFUL = {
    **{(name, "1e12"): "no upper bound (a very large value)" for name in _UNBOUNDED},
    ("gamma", "zero"): "only the immediate reward counts",
    ("gae_lambda", "zero"): "one-step TD advantages",
    ("cg_damping", "zero"): "no damping",
    ("critic_cg_damping", "zero"): "no damping of the critic's solve",
    ("n_critic_updates", "zero"): "the critic is not fitted",
    ("sde_sample_freq", "negative"): "-1: sample gSDE's noise only at the start of each rollout",
    ("sde_sample_freq", "zero"): "like -1: the noise is never resampled within a rollout",
    ("ent_coef", "zero"): "no entropy bonus",
    ("vf_coef", "zero"): "no value loss in the total loss",
    ("kl_dual_lr", "zero"): "the dual rule keeps beta",
    ("kl_coef_min", "zero"): "no lower bound on beta",
    ("kl_lr_gain", "zero"): "no step-size control",
    ("update_threads", "zero"): "the update runs on torch's own thread setting",
}

CASES = [(algo, name, value) for algo, names in NUMERIC_ARGUMENTS.items() for name in names for value in VALUES]


def _env():
    return make_vec_env("CartPole-v1", n_envs=1)


def outcome(algo, name, value_name, env=None) -> str:
    """``"value_error"`` (naming the argument), ``"accepted"``, or a description of anything else."""
    kwargs = {name: VALUES[value_name], "policy_kwargs": dict(net_arch=[4])}
    if name not in ("n_steps", "batch_size"):
        kwargs.update(n_steps=16, batch_size=16)
    try:
        algo("MlpPolicy", env if env is not None else _env(), **kwargs)
    except ValueError as error:
        subject = str(error).split(" must")[0]
        return "value_error" if re.search(rf"\b{re.escape(name)}\b", subject) else f"names another: {error}"
    except Exception as error:  # the sweep reports anything else
        return f"{type(error).__name__}: {error}"
    return "accepted"


@pytest.fixture(scope="module")
def env():
    vec_env = _env()
    yield vec_env
    vec_env.close()


@pytest.mark.parametrize(
    "algo, name, value_name", CASES, ids=[f"{algo.__name__}-{name}-{value}" for algo, name, value in CASES]
)
def test_every_bad_value_raises_or_is_meaningful(algo, name, value_name, env):
    result = outcome(algo, name, value_name, env)
    if (name, value_name) in MEANINGFUL:
        assert result == "accepted", result
    else:
        assert result == "value_error", result


def test_fixed_beta_may_be_zero_and_bounds_are_named():
    KLPPO("MlpPolicy", "CartPole-v1", kl_coef=0.0, kl_adaptation="fixed", n_steps=16, batch_size=16)
    with pytest.raises(ValueError, match="kl_coef_min"):
        KLPPO("MlpPolicy", "CartPole-v1", kl_coef_min=2.0, kl_coef_max=1.0)


RANGE_CASES = [(algo, name) for algo, names in NUMERIC_ARGUMENTS.items() for name in names]


@pytest.mark.parametrize("algo, name", RANGE_CASES, ids=[f"{algo.__name__}-{name}" for algo, name in RANGE_CASES])
def test_range_messages_name_only_allowed_values(algo, name, env):
    # What a message says is allowed must be: infinities are refused, so they are never named as a bound
    kwargs: dict = {"policy_kwargs": dict(net_arch=[4])}
    if name not in ("n_steps", "batch_size"):
        kwargs.update(n_steps=16, batch_size=16)
    for value_name in ("negative", "zero", "nan", "+inf", "-inf"):
        try:
            algo("MlpPolicy", env, **{**kwargs, name: VALUES[value_name]})
        except ValueError as error:
            allowed = str(error).split(" must ", 1)[1].rsplit(", got ", 1)[0]
            assert not re.search(r"\binf\b|\bnan\b", allowed), str(error)


@pytest.mark.parametrize(
    "algo, kwargs, message",
    [
        (NPG, {"target_kl": -1}, "target_kl must be > 0.0, got -1"),
        (NPG, {"target_kl": math.inf}, "target_kl must be a finite number > 0.0, got inf"),
        (NPG, {"target_kl": lambda _: -1.0}, "target_kl(1.0) must be > 0.0, got -1.0"),
        (NPG, {"cg_damping": -1}, "cg_damping must be >= 0.0, got -1"),
        (NPG, {"gamma": 1.5}, "gamma must be in [0.0, 1.0], got 1.5"),
        (NPG, {"line_search_shrinking_factor": 1}, "line_search_shrinking_factor must be in (0.0, 1.0), got 1"),
        (NPG, {"n_steps": 0}, "n_steps must be an integer >= 1, got 0"),
        (KLPPO, {"kl_lr_max": 0.5}, "kl_lr_max must be >= 1.0, got 0.5"),
        (KLPPO, {"kl_lr_min": 0}, "kl_lr_min must be in (0.0, 1.0], got 0"),
        (KLPPO, {"kl_coef": 1e4}, "kl_coef must be in [0.001, 1000.0], got 10000.0"),
    ],
)
def test_range_messages(algo, kwargs, message, env):
    with pytest.raises(ValueError) as error:
        algo("MlpPolicy", env, **{"n_steps": 16, "batch_size": 16, **kwargs})
    assert str(error.value) == message


def test_sub_sampling_factor_larger_than_the_rollout_raises():
    vec_env = make_vec_env("CartPole-v1", n_envs=2)
    NPG("MlpPolicy", vec_env, n_steps=8, batch_size=16, sub_sampling_factor=16)  # the Fisher on one sample: allowed
    message = (
        "sub_sampling_factor must be <= n_steps * n_envs = 16, the rollout's size (the Fisher is estimated on every "
        "sub_sampling_factor-th sample of it), got 17"
    )
    with pytest.raises(ValueError) as error:
        NPG("MlpPolicy", vec_env, n_steps=8, batch_size=16, sub_sampling_factor=17)
    assert str(error.value) == message
    vec_env.close()
