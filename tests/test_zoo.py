"""
The rl-baselines3-zoo plug-in: the table of algorithms, the registry, the experiment manager, the Optuna
samplers/converters, every shipped hyperparameter entry, and the zoo, Optuna and SB3 left untouched.
"""

import argparse
import ast
import importlib.util
import re
from pathlib import Path

import gymnasium as gym
import pytest
import yaml
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnvWrapper, VecFrameStack, VecNormalize, is_vecenv_wrapped

import sb3_npg
from sb3_npg import KLPPO, NPG
from sb3_npg.common.vec_env import InfoCopyDummyVecEnv
from sb3_npg.zoo.algos import ALGOS as ALGO_TABLE
from sb3_npg.zoo.config import (
    HYPERPARAMS_DIR,
    algorithm_class,
    build_model,
    constructor_kwargs,
    is_atari,
    load_all_hyperparams,
    load_hyperparams,
    make_env_from_hyperparams,
    wrapper_from_hyperparams,
)

ALGOS = [name for name, spec in ALGO_TABLE.items() if not spec.recurrent]
REQUIRED_ENTRIES = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
    "LunarLander-v3",
    "LunarLanderContinuous-v3",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Swimmer-v5",
    "Ant-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "Reacher-v5",
    "atari",
]
# The recurrent algorithms (zoo names as RecurrentPPO's ``ppo_lstm``) and the velocity-masked environments they cover
RECURRENT_ALGOS = [name for name, spec in ALGO_TABLE.items() if spec.recurrent]
RECURRENT_REQUIRED_ENTRIES = ["CartPoleNoVel-v1", "PendulumNoVel-v1", "MountainCarContinuousNoVel-v0", "LunarLanderNoVel-v3"]
# The game that stands for the ``atari`` entry
ATARI_GAME = "PongNoFrameskip-v4"


def require_env(env_id: str) -> None:
    """Skip, with the reason, when the environment's package (MuJoCo, Box2D, ale-py and its ROMs) is missing."""
    game = ATARI_GAME if env_id == "atari" else env_id
    if "NoVel-v" in env_id:
        pytest.importorskip("rl_zoo3.import_envs", reason="rl-zoo3 registers the NoVel environments")
    if env_id == "atari" and not is_atari(game):
        pytest.skip(f"the atari entry needs ale-py and its ROMs ({game} is not registered): pip install ale-py")
    try:
        env = gym.make(game)
    except (ImportError, OSError, RuntimeError, gym.error.Error) as error:
        pytest.skip(f"{game} cannot be created ({type(error).__name__}: {error}); pip install 'sb3-npg[envs]'")
    env.close()


def shipped_entries() -> list[tuple[str, str]]:
    recurrent = RECURRENT_ALGOS if importlib.util.find_spec("sb3_contrib") else []
    return [(algo, env_id) for algo in [*ALGOS, *recurrent] for env_id in load_all_hyperparams(algo)]


ENTRIES = shipped_entries()


def test_table():
    # The one table of algorithms: every row has its file, its class and a sampler family
    from sb3_npg.zoo.config import RECURRENT_ALGOS, hyperparams_path

    assert ALGOS == ["npg", "klppo"] and RECURRENT_ALGOS == ("npg_lstm", "klppo_lstm")
    assert list(ALGO_TABLE) == [*ALGOS, *RECURRENT_ALGOS]
    for name, spec in ALGO_TABLE.items():
        assert spec.name == name and spec.hyperparams_file == hyperparams_path(name) and spec.hyperparams_file.is_file()
        if spec.recurrent and importlib.util.find_spec("sb3_contrib") is None:
            continue
        assert spec.load() is algorithm_class(name) and spec.load() is getattr(sb3_npg, spec.class_path.split(":")[1])
    pytest.importorskip("optuna")
    from sb3_npg.zoo.hyperparams_opt import FAMILIES, HYPERPARAMS_CONVERTER, SEARCH_SPACES, family

    assert {spec.search_space for spec in ALGO_TABLE.values()} == set(FAMILIES)
    for name, spec in ALGO_TABLE.items():  # the by-algorithm mappings are the table's families
        assert family(name) is FAMILIES[spec.search_space]
        assert HYPERPARAMS_CONVERTER[name] is family(name).convert
        for space, samplers in SEARCH_SPACES.items():
            assert samplers[name] is family(name).sampler(space)
    with pytest.raises(ValueError, match="search_space must be one of full, update"):
        family("npg").sampler("all")


def test_register():
    pytest.importorskip("rl_zoo3")
    import rl_zoo3
    import rl_zoo3.hyperparams_opt

    from sb3_npg.zoo.hyperparams_opt import convert_klppo_params, convert_npg_params, sample_klppo_params, sample_npg_params
    from sb3_npg.zoo.registry import register

    algos, samplers = rl_zoo3.ALGOS, rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER
    registered = register()
    assert register() == registered  # idempotent
    assert rl_zoo3.ALGOS is algos and rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER is samplers  # the same dicts
    assert rl_zoo3.ALGOS["npg"] is NPG
    assert rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER["npg"] is sample_npg_params
    assert rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER["npg"] is convert_npg_params
    assert rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER["klppo"] is sample_klppo_params
    assert rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER["klppo"] is convert_klppo_params
    assert rl_zoo3.ALGOS["ppo"].__name__ == "PPO"  # the zoo's own algorithms are still there
    assert rl_zoo3.ALGOS["klppo"] is KLPPO


def test_experiment_manager_knows_target_kl_schedules(tmp_path):
    # The subclass turns lin_<x> strings of target_kl into schedules; the zoo's own class is left as it is
    pytest.importorskip("rl_zoo3")
    from rl_zoo3.exp_manager import ExperimentManager

    from sb3_npg.zoo.exp_manager import NPGExperimentManager

    preprocess = NPGExperimentManager._preprocess_schedules
    hyperparams = preprocess({"target_kl": "lin_0.1", "learning_rate": "lin_1e-3", "n_steps": 8})
    assert callable(hyperparams["target_kl"]) and callable(hyperparams["learning_rate"])
    assert hyperparams["target_kl"](1.0) == pytest.approx(0.1)
    assert hyperparams["target_kl"](0.5) == pytest.approx(0.05)
    assert hyperparams["learning_rate"](0.5) == pytest.approx(5e-4)  # the zoo's own conversion still runs
    assert preprocess({"target_kl": 0.02})["target_kl"] == 0.02  # numbers are left alone
    with pytest.raises(ValueError, match="target_kl"):
        preprocess({"target_kl": "lin_fast"})
    assert ExperimentManager._preprocess_schedules({"target_kl": "lin_0.1"})["target_kl"] == "lin_0.1"
    # An instance uses it: KLPPO's Pendulum entry decays its target
    manager = NPGExperimentManager(
        argparse.Namespace(), "klppo", "Pendulum-v1", str(tmp_path), eval_freq=-1, device="cpu", verbose=0
    )
    assert load_hyperparams("klppo", "Pendulum-v1")["target_kl"] == "lin_0.15"
    hyperparams, _, _, _ = manager._preprocess_hyperparams(manager.read_hyperparameters()[0])
    assert hyperparams["target_kl"](0.5) == pytest.approx(0.075)


# The dependencies this package extends by subclassing and by passing arguments, never by assigning to them
DEPENDENCIES = ("rl_zoo3", "optuna", "stable_baselines3")


def _imported_from_dependencies(tree: ast.Module) -> set[str]:
    """The names a module binds to a dependency or to something imported from one."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in DEPENDENCIES:
                    names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in DEPENDENCIES:
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _root(node: ast.expr) -> str | None:
    """The name an expression such as ``a.b[c].d`` starts from."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _targets(node: ast.AST) -> list[ast.expr]:
    """What an assignment, augmented assignment or ``del`` writes to, tuples unpacked."""
    if isinstance(node, (ast.Assign, ast.Delete)):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    else:
        return []
    unpacked: list[ast.expr] = []
    while targets:
        target = targets.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            targets.extend(target.elts)
        elif isinstance(target, ast.Starred):
            targets.append(target.value)
        else:
            unpacked.append(target)
    return unpacked


def _sets_an_attribute_of(node: ast.AST, bound: set[str]) -> bool:
    """Whether a node calls setattr() or delattr() on a name bound to a dependency (``setattr(optuna, ...)``)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr")):
        return False
    return bool(node.args) and _root(node.args[0]) in bound


def test_package_assigns_nothing_to_the_zoo_optuna_or_sb3():
    # No attribute of rl_zoo3, Optuna or SB3 (their modules, classes, functions) is assigned, deleted, or set with
    # setattr() anywhere in the package, and no module uses unittest.mock. Dictionaries' contents (the zoo's
    # registries) may be added to: no attribute is written then.
    package = Path(sb3_npg.__file__).parent
    offences = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        bound = _imported_from_dependencies(tree)
        where = path.relative_to(package.parent)
        for node in ast.walk(tree):
            for target in _targets(node):
                if isinstance(target, ast.Attribute) and _root(target) in bound:
                    offences.append(f"{where}:{target.lineno}: assigns {ast.unparse(target)}")
            if _sets_an_attribute_of(node, bound):
                offences.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(module.split(".")[0] == "unittest" for module in modules):
                    offences.append(f"{where}:{node.lineno}: imports unittest")
    assert not offences, "\n".join(offences)


def test_the_zoo_is_left_untouched(tmp_path, monkeypatch):
    # After a run of -optimize and a re-training in this process, the zoo's class, its train() and Optuna's
    # functions are their own
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("rl_zoo3")
    import rl_zoo3.exp_manager
    import rl_zoo3.train
    from rl_zoo3.exp_manager import ExperimentManager

    from sb3_npg.zoo.cli import main

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["train", "--algo", "npg", "--env", "CartPole-v1", "-n", "64", "-f", str(tmp_path / "logs"), "--seed", "0"]
    args += ["-params", "n_steps:32", "batch_size:64", "n_critic_updates:1", "--storage", storage, "--study-name", "s"]
    monkeypatch.setattr("sys.argv", ["sb3-npg"])
    main([*args, "-optimize", "--n-trials", "1", "--search-space", "update", "--pruner", "none", "--no-optim-plots"])
    main([*args, "--trial-id", "0"])
    assert list((tmp_path / "logs" / "npg").glob("CartPole-v1_*/CartPole-v1.zip"))  # it re-trained trial 0
    for name, value in vars(ExperimentManager).items():
        function = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if callable(function):
            assert function.__module__ == "rl_zoo3.exp_manager", name
            assert function.__qualname__ == f"ExperimentManager.{name}", name
    assert rl_zoo3.train.ExperimentManager is ExperimentManager
    assert rl_zoo3.exp_manager.MaxTrialsCallback is optuna.study.MaxTrialsCallback
    assert optuna.create_study is optuna.study.create_study and optuna.load_study is optuna.study.load_study
    assert optuna.create_study.__module__ == optuna.load_study.__module__ == "optuna.study.study"


@pytest.mark.parametrize("algo", ALGOS)
def test_sampler_gives_valid_kwargs(algo):
    optuna = pytest.importorskip("optuna")
    from sb3_npg.zoo.hyperparams_opt import family

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    for index in range(4):
        trial = study.ask()
        env_id = ["CartPole-v1", "Pendulum-v1"][index % 2]
        kwargs = family(algo).full(trial, 1, 2, {})
        # The converter rebuilds the same arguments from what the study stores
        assert family(algo).convert(trial.params) == kwargs
        assert "worker" in trial.user_attrs
        model = algorithm_class(algo)("MlpPolicy", env_id, device="cpu", **kwargs)
        assert model.n_steps == kwargs["n_steps"]
        assert model.gamma == pytest.approx(kwargs["gamma"])
        assert model.batch_size <= model.n_steps
        study.tell(trial, 0.0)


def test_npg_search_space_scales_with_the_action_size():
    # NPG sums its KL over action dimensions: the radius and damping bounds grow with d, so that the zoo's
    # MuJoCo settings under TRPO's semantics (HalfCheetah, d=6: target_kl 0.24, cg_damping 0.6) can be drawn
    optuna = pytest.importorskip("optuna")
    from sb3_npg.zoo.hyperparams_opt import convert_npg_params, sample_npg_params

    for d, kl_high, damping_high in [(1, 0.1, 0.5), (6, 0.6, 1.2)]:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
        trial = study.ask()
        kwargs = sample_npg_params(trial, d, 2, {})
        distributions = trial.distributions
        assert distributions["target_kl"].high == pytest.approx(kl_high)
        assert distributions["cg_damping"].high == pytest.approx(damping_high)
        assert kwargs["damped_step_size"] is trial.params["damped_step_size"]
    # A study from before damped_step_size was searched still converts (NPG's default then applies)
    params = dict(trial.params)
    del params["damped_step_size"]
    assert "damped_step_size" not in convert_npg_params(params)


@pytest.mark.parametrize("algo", ALGOS)
def test_update_space_draws_the_update_alone(algo):
    # The update space draws a subset of the full space's parameters, with the same bounds, and nothing of the
    # rollout, discounting or network; the one converter reads trials of both spaces
    optuna = pytest.importorskip("optuna")
    from sb3_npg.zoo.hyperparams_opt import HYPERPARAMS_SAMPLER, SEARCH_SPACES, UPDATE_SAMPLER, family
    from sb3_npg.zoo.tuning import SEARCH_SPACE_NAMES

    assert tuple(SEARCH_SPACES) == SEARCH_SPACE_NAMES
    assert set(UPDATE_SAMPLER) == set(HYPERPARAMS_SAMPLER) == set(ALGO_TABLE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    full = study.ask()
    family(algo).sampler("full")(full, 6, 1, {})
    for _ in range(6):
        trial = study.ask()
        kwargs = family(algo).sampler("update")(trial, 6, 1, {})
        assert family(algo).convert(trial.params) == kwargs
        assert "worker" in trial.user_attrs
        assert not {"n_steps", "batch_size", "gamma", "gae_lambda", "policy_kwargs", "ent_coef"} & set(kwargs)
        assert "target_kl" in kwargs
        for name, distribution in trial.distributions.items():
            if name in full.distributions:
                assert full.distributions[name] == distribution, name
            else:
                assert name == "kl_dual_lr"  # drawn only with the dual controller
        study.tell(trial, 0.0)


@pytest.mark.parametrize("algo", ALGOS)
def test_converter_rejects_unknown_choice(algo):
    pytest.importorskip("optuna")
    from sb3_npg.zoo.hyperparams_opt import family

    params = dict(n_steps_pow=8, batch_size_pow=6, one_minus_gamma=0.01, one_minus_gae_lambda=0.05, net_arch="huge")
    params.update(activation_fn="tanh", learning_rate=1e-3, target_kl=0.01)
    with pytest.raises(ValueError, match="net_arch"):
        family(algo).convert(params)


@pytest.mark.parametrize("algo", [*ALGOS, *RECURRENT_ALGOS])
def test_required_entries_and_tuning_marks(algo):
    text = (HYPERPARAMS_DIR / f"{algo}.yml").read_text()
    entries = yaml.safe_load(text) or {}
    required = RECURRENT_REQUIRED_ENTRIES if algo in RECURRENT_ALGOS else REQUIRED_ENTRIES
    missing = [env_id for env_id in required if env_id not in entries]
    assert not missing, f"{algo}.yml has no entry for {missing}"
    # Every entry says, in the comment block right above it, whether (and how) it was tuned
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if not re.match(r"^[^\s#][^:]*:(\s*&\S+)?\s*$", line):
            continue  # not a top-level key
        above = number - 1
        while above >= 0 and lines[above].startswith("#"):
            above -= 1
        comments = " ".join(lines[above + 1 : number]).lower()
        assert "tuned" in comments, f"{algo}.yml: the comment above {line!r} does not say whether it was tuned"


@pytest.mark.parametrize("algo, env_id", ENTRIES, ids=[f"{a}-{e}" for a, e in ENTRIES])
def test_entry_builds_model(algo, env_id, outside_checkout):
    require_env(env_id)
    game = ATARI_GAME if env_id == "atari" else env_id
    entry = load_hyperparams(algo, game)
    assert entry == load_all_hyperparams(algo)[env_id]
    model, n_timesteps = build_model(algo, game, seed=0, device="cpu")
    try:
        assert n_timesteps > 0
        kwargs = constructor_kwargs(entry)
        for key in ("n_steps", "batch_size", "gamma", "gae_lambda", "n_epochs", "n_critic_updates", "cg_max_steps"):
            if key in kwargs:
                assert getattr(model, key) == pytest.approx(kwargs[key]), key
        assert model.n_envs == entry.get("n_envs", 1)
        assert (model.get_vec_normalize_env() is not None) == bool(entry.get("normalize", False))
        assert is_vecenv_wrapped(model.get_env(), VecFrameStack) == bool(entry.get("frame_stack"))
    finally:
        model.get_env().close()


@pytest.mark.parametrize("algo, env_id", ENTRIES, ids=[f"{a}-{e}" for a, e in ENTRIES])
def test_entry_builds_model_through_the_zoo(algo, env_id, tmp_path, monkeypatch):
    # The zoo's ExperimentManager, as sb3-npg train subclasses it, reads the entry, builds the env and the model,
    # and saves config.yml
    monkeypatch.chdir(tmp_path)
    require_env(env_id)
    pytest.importorskip("rl_zoo3")
    from sb3_npg.zoo.exp_manager import NPGExperimentManager
    from sb3_npg.zoo.registry import default_conf_file

    game = ATARI_GAME if env_id == "atari" else env_id
    manager = NPGExperimentManager(
        argparse.Namespace(), algo, game, str(tmp_path), eval_freq=-1, device="cpu", config=default_conf_file(algo), verbose=0
    )
    model, saved = manager.setup_experiment()
    try:
        assert isinstance(model, algorithm_class(algo))
        assert dict(saved) == load_all_hyperparams(algo)[env_id]
        assert (Path(manager.params_path) / "config.yml").is_file()
        copies = model.get_env()
        while isinstance(copies, VecEnvWrapper):
            copies = copies.venv
        assert type(copies) is InfoCopyDummyVecEnv  # --vec-env dummy, the default
    finally:
        model.get_env().close()


def test_subproc_copies_stay_the_zoos(tmp_path):
    pytest.importorskip("rl_zoo3")
    from sb3_npg.zoo.exp_manager import NPGExperimentManager

    manager = NPGExperimentManager(argparse.Namespace(), "npg", "CartPole-v1", str(tmp_path), vec_env_type="subproc")
    assert manager.vec_env_class is SubprocVecEnv


def test_config_reads_the_zoo_keys():
    entry = {
        "n_envs": 2,
        "gamma": 0.95,
        "normalize": "dict(norm_obs=True, norm_reward=False)",
        "frame_stack": 2,
        "env_wrapper": [{"gymnasium.wrappers.TimeLimit": {"max_episode_steps": 10}}],
        "env_kwargs": {"sutton_barto_reward": True},
        "policy_kwargs": "dict(net_arch=[32], activation_fn=nn.ReLU)",
        "learning_rate": "lin_1e-3",
    }
    env = make_env_from_hyperparams(entry, "CartPole-v1", seed=0)
    assert isinstance(env, VecFrameStack) and env.num_envs == 2
    normalize = env.venv
    assert isinstance(normalize, VecNormalize) and not normalize.norm_reward and normalize.gamma == 0.95
    assert env.observation_space.shape == (8,)
    env.close()
    kwargs = constructor_kwargs(entry)
    assert kwargs["learning_rate"](0.5) == pytest.approx(5e-4)
    assert kwargs["policy_kwargs"]["net_arch"] == [32]
    assert set(kwargs) == {"gamma", "policy_kwargs", "learning_rate"}
    assert wrapper_from_hyperparams({}) is None


@pytest.mark.parametrize(
    "entry, match",
    [
        ({"normalize": 3}, "normalize"),
        ({"normalize": "dict(("}, "normalize"),
        ({"env_wrapper": "NoSuchWrapper"}, "env_wrapper"),
        ({"env_wrapper": "gymnasium.wrappers.NoSuchWrapper"}, "env_wrapper"),
        ({"env_wrapper": [42]}, "env_wrapper"),
    ],
)
def test_config_errors_name_the_key(entry, match):
    with pytest.raises(ValueError, match=match):
        make_env_from_hyperparams(entry, "CartPole-v1")


def test_config_errors():
    with pytest.raises(ValueError, match="algo"):
        load_hyperparams("sac", "CartPole-v1")
    with pytest.raises(ValueError, match="no npg hyperparameters"):
        load_hyperparams("npg", "FrozenLake-v1")
    with pytest.raises(ValueError, match="learning_rate"):
        constructor_kwargs({"learning_rate": "lin_fast"})
    with pytest.raises(ValueError, match="algo"):
        algorithm_class("ppo")


def test_zoo_reloads_a_trial_with_the_converter(tmp_path):
    # `sb3-npg train ... --storage URL --study-name S --trial-id N` re-trains trial N, trial 0 included: the
    # experiment manager converts its raw parameters, and -params still wins over them
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("rl_zoo3")
    from sb3_npg.zoo.exp_manager import NPGExperimentManager
    from sb3_npg.zoo.hyperparams_opt import sample_npg_params
    from sb3_npg.zoo.registry import default_conf_file
    from sb3_npg.zoo.tuning import TuningError

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="npg", sampler=optuna.samplers.RandomSampler(seed=1))
    sampled = []
    for _ in range(2):
        trial = study.ask()
        sampled.append(sample_npg_params(trial, 1, 2, {}))
        study.tell(trial, 1.0)

    def manager(trial_id, hyperparams=None, study_name="npg"):
        return NPGExperimentManager(
            argparse.Namespace(),
            "npg",
            "CartPole-v1",
            str(tmp_path),
            hyperparams=hyperparams,
            storage=storage,
            study_name=study_name,
            trial_id=trial_id,
            config=default_conf_file("npg"),
            verbose=0,
        )

    for trial_id in (0, 1):
        hyperparams, saved = manager(trial_id).read_hyperparameters()
        for key, value in sampled[trial_id].items():
            assert hyperparams[key] == value and saved[key] == value, key
    reader = manager(0, hyperparams={"target_kl": 0.5})
    hyperparams, _ = reader.read_hyperparameters()
    assert hyperparams["target_kl"] == 0.5 and hyperparams["n_steps"] == sampled[0]["n_steps"]
    assert reader.trial_id == 0 and reader.custom_hyperparams == {"target_kl": 0.5}  # as they were
    assert manager(None).read_hyperparameters()[0]["n_steps"] == load_hyperparams("npg", "CartPole-v1")["n_steps"]
    with pytest.raises(TuningError, match="--trial-id must be 0 to 1"):
        manager(2).read_hyperparameters()
    with pytest.raises(TuningError, match="there is no study 'nope'"):
        manager(0, study_name="nope").read_hyperparameters()
