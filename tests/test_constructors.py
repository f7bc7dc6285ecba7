"""
The constructors: each parameter that the algorithms share is declared once, with its default, in the base's
``__init__``; every algorithm's signature still lists all its parameters (its own, then the shared ones), each call is
checked against that signature, and every argument reaches the model. The recurrent versions have the feed-forward
ones' constructors.
"""

import inspect
import os
import typing
from pathlib import Path

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

import sb3_npg
from sb3_npg import KLPPO, NPG, RecurrentKLPPO, RecurrentNPG
from sb3_npg.common.on_policy import KLOnPolicyAlgorithm, OnPolicyArguments, document_parameters, takes_parameters_of

ALGOS = [NPG, KLPPO, RecurrentNPG, RecurrentKLPPO]
FEED_FORWARD = {RecurrentNPG: NPG, RecurrentKLPPO: KLPPO}
RECURRENT = list(FEED_FORWARD)


def _algo_id(algo):
    return algo.__name__


def _shared_parameters() -> dict[str, inspect.Parameter]:
    """The base's parameters that have a default: those every algorithm hands on unchanged."""
    parameters = inspect.signature(KLOnPolicyAlgorithm.__init__).parameters
    return {name: parameter for name, parameter in parameters.items() if parameter.default is not parameter.empty}


# === The shared parameters, declared once ===


def test_the_typed_arguments_are_the_base_parameters_with_a_default():
    """``OnPolicyArguments`` (what type checkers see of ``**kwargs``) names the base's defaulted parameters, typed alike."""
    hints = typing.get_type_hints(OnPolicyArguments)
    shared = _shared_parameters()
    assert list(hints) == list(shared)
    for name, parameter in shared.items():
        assert hints[name] == parameter.annotation, name


@pytest.mark.parametrize("algo", [NPG, KLPPO], ids=_algo_id)
def test_signature_is_the_own_parameters_then_the_shared_ones(algo):
    """Its own parameters as written, then the base's shared ones with the base's defaults, ``_init_setup_model`` last."""
    written = inspect.signature(inspect.unwrap(algo.__init__)).parameters
    assert list(written)[-1] == "kwargs" and written["kwargs"].kind is inspect.Parameter.VAR_KEYWORD
    own = [name for name in written if name not in ("self", "kwargs", "_init_setup_model")]
    shared = _shared_parameters()
    assert not set(own) & set(shared)

    parameters = inspect.signature(algo).parameters
    assert list(parameters) == [*own, *shared, "_init_setup_model"]
    assert [parameters[name].kind for name in ("policy", "env")] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 2
    assert {parameters[name].kind for name in list(parameters)[2:]} == {inspect.Parameter.KEYWORD_ONLY}
    for name, parameter in shared.items():
        assert (parameters[name].default, parameters[name].annotation) == (parameter.default, parameter.annotation), name
    for name in own:
        assert parameters[name] == written[name], name


@pytest.mark.parametrize("algo", RECURRENT, ids=_algo_id)
def test_recurrent_signature_is_the_feed_forward_one(algo):
    """``help()``, IDEs and the documentation show the parameters: those of NPG (KLPPO), in order, with its defaults."""
    assert "__init__" not in vars(algo)  # inherited, so that type checkers see NPG's (KLPPO's) parameters too
    assert inspect.signature(algo) == inspect.signature(FEED_FORWARD[algo])
    assert "target_kl" in inspect.signature(algo).parameters


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_every_parameter_is_described_in_the_signature_order(algo):
    described = [line.split(":")[1].removeprefix("param ") for line in algo.__doc__.splitlines() if line.startswith(":param")]
    assert described == list(inspect.signature(algo).parameters)


def test_a_parameter_without_a_description_is_an_error_at_import():
    with pytest.raises(TypeError, match=r"Faster's parameters \['kl_speed'\] have no description"):

        @document_parameters({})
        class Faster(NPG):
            def __init__(self, policy: str, env: str, target_kl: float = 0.01, kl_speed: float = 2.0):
                super().__init__(policy, env, target_kl=target_kl)


# === Each call is checked against the signature ===


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_a_misspelt_argument_is_a_type_error_that_names_the_class(algo):
    with pytest.raises(TypeError, match=rf"^{algo.__name__}\.__init__\(\) got an unexpected keyword argument 'target_kll'$"):
        algo("MlpPolicy", "CartPole-v1", target_kll=0.02)


@pytest.mark.parametrize("algo", [NPG, RecurrentNPG], ids=_algo_id)
def test_an_argument_npg_does_not_take_is_refused_though_the_base_takes_it(algo):
    """NPG has no entropy bonus: ``ent_coef`` is the base's (NPG passes 0), not NPG's."""
    with pytest.raises(TypeError, match=rf"^{algo.__name__}\.__init__\(\) got an unexpected keyword argument 'ent_coef'$"):
        algo("MlpPolicy", "CartPole-v1", ent_coef=0.01)


@pytest.mark.parametrize("algo", [NPG, KLPPO], ids=_algo_id)
def test_hyperparameters_are_keyword_only(algo):
    with pytest.raises(TypeError, match=rf"^{algo.__name__}\.__init__\(\) too many positional arguments$"):
        algo("MlpPolicy", "CartPole-v1", 1e-3)


def test_takes_parameters_of_composes_the_signature_and_hands_the_arguments_on():
    def base(self, a, *, b, c=1, d: int = 2):
        pass

    received = []

    class Toy:
        @takes_parameters_of(base)
        def __init__(self, a, *, e=3, _init_setup_model=True, **kwargs):
            received.append((e, _init_setup_model, kwargs))

    class Inherits(Toy):
        pass

    assert str(inspect.signature(Toy)) == "(a, *, e=3, c=1, d: int = 2, _init_setup_model=True)"
    assert inspect.signature(Inherits) == inspect.signature(Toy)
    Toy(0, d=5, e=4)
    assert received == [(4, True, {"d": 5})]
    # b has no default: the decorated function must pass it itself, a caller cannot
    with pytest.raises(TypeError, match=r"^Toy\.__init__\(\) got an unexpected keyword argument 'b'$"):
        Toy(0, b=1)
    with pytest.raises(TypeError, match=r"^Inherits\.__init__\(\) missing a required argument: 'a'$"):
        Inherits()
    assert len(received) == 1


def test_takes_parameters_of_needs_kwargs_to_hand_on():
    def base(self, c=1):
        pass

    with pytest.raises(TypeError, match=r"must take \*\*kwargs to hand parameters on to .*base"):

        @takes_parameters_of(base)
        def init(self, e=3):
            pass


# === Every argument reaches the model ===

# A valid value other than the default for every argument (but the policy, the environment and the buffer, which the
# recurrent versions need left unset): each must reach the algorithm
SHARED_ARGUMENTS = dict(
    learning_rate=5e-4,
    n_steps=32,
    batch_size=16,
    gamma=0.9,
    gae_lambda=0.9,
    use_sde=True,
    sde_sample_freq=4,
    normalize_advantage=False,
    target_kl=0.02,
    stats_window_size=10,
    update_threads=1,
    tensorboard_log="runs",
    verbose=2,
    seed=3,
    device="cpu",
)
OWN_ARGUMENTS = {
    NPG: dict(
        cg_max_steps=3,
        cg_damping=0.05,
        damped_step_size=True,
        line_search=True,
        line_search_shrinking_factor=0.5,
        line_search_max_iter=4,
        n_critic_updates=2,
        critic_solver="trust_region",
        critic_target_kl=0.02,
        critic_cg_max_steps=4,
        critic_cg_damping=0.1,
        sub_sampling_factor=2,
        critic_sub_sampling_factor=3,
    ),
    KLPPO: dict(
        n_epochs=3,
        clip_range=0.2,
        clip_range_vf=0.5,
        ent_coef=0.01,
        vf_coef=0.7,
        max_grad_norm=0.9,
        kl_coef=0.5,
        kl_adaptation="dual",
        kl_coef_min=0.01,
        kl_coef_max=10.0,
        kl_dual_lr=5.0,
        kl_early_stop=2.0,
        kl_estimator="sample",
        kl_lr_gain=0.3,
        kl_lr_min=0.1,
        kl_lr_max=3.0,
    ),
}
UNSET = {"policy", "env", "rollout_buffer_class", "rollout_buffer_kwargs", "_init_setup_model"}


@pytest.mark.parametrize("algo", ALGOS, ids=_algo_id)
def test_every_argument_reaches_the_algorithm(algo):
    recurrent = algo in FEED_FORWARD
    policy_kwargs = dict(lstm_hidden_size=4) if recurrent else dict(net_arch=[4])
    arguments = {**SHARED_ARGUMENTS, **OWN_ARGUMENTS[FEED_FORWARD.get(algo, algo)], "policy_kwargs": policy_kwargs}
    assert set(arguments) == set(inspect.signature(algo).parameters) - UNSET
    defaults = {name: parameter.default for name, parameter in inspect.signature(algo).parameters.items()}
    assert all(value != defaults[name] for name, value in arguments.items())
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    model = algo("MlpLstmPolicy" if recurrent else "MlpPolicy", env, _init_setup_model=False, **arguments)
    for name, value in arguments.items():
        stored = getattr(model, name) if hasattr(model, name) else getattr(model, f"_{name}")  # SB3: _stats_window_size
        if name in ("target_kl", "clip_range", "clip_range_vf"):
            stored = stored(1.0)
        elif name == "device":
            value = th.device(value)
        assert stored == value, name


# === What type checkers see ===

TYPED_CALLS = """
from sb3_npg import NPG, RecurrentKLPPO

NPG("MlpPolicy", "CartPole-v1", gamma=0.9, cg_max_steps=5, device="cpu")
RecurrentKLPPO("MlpLstmPolicy", "CartPole-v1", n_epochs=3, target_kl=0.02, verbose=1)
NPG("MlpPolicy", "CartPole-v1", gamma="high")
NPG("MlpPolicy", "CartPole-v1", ent_coef=0.1)
RecurrentKLPPO("MlpLstmPolicy", "CartPole-v1", kl_speed=2.0)
"""


def test_type_checkers_see_the_own_and_the_shared_parameters(tmp_path, monkeypatch):
    """mypy checks each argument by name and type: the shared ones (``**kwargs: Unpack[...]``), the recurrent classes'."""
    api = pytest.importorskip("mypy.api", reason="mypy is in the tests extra")
    script = tmp_path / "calls.py"
    script.write_text(TYPED_CALLS)
    # The package's folder: an editable install's import hook is invisible to mypy
    package_root = Path(sb3_npg.__file__).resolve().parents[1]
    options = ["--no-incremental", "--config-file", os.devnull, "--ignore-missing-imports", "--follow-imports=silent"]
    monkeypatch.setenv("MYPYPATH", str(package_root))
    report, errors, status = api.run([*options, str(script)])
    assert status == 1, report + errors
    found = [line.split(": error: ")[1] for line in report.splitlines() if ": error: " in line]
    assert found == [
        'Argument "gamma" to "NPG" has incompatible type "str"; expected "float"  [arg-type]',
        'Unexpected keyword argument "ent_coef" for "NPG"  [call-arg]',
        'Unexpected keyword argument "kl_speed" for "RecurrentKLPPO"  [call-arg]',
    ], report
