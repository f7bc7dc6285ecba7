"""
The ``sb3-npg`` command line (also ``python -m sb3_npg``): rl-baselines3-zoo's sub-commands, with this
package's algorithms (the rows of :data:`sb3_npg.zoo.algos.ALGOS`: ``npg``, ``klppo`` and their recurrent
versions ``npg_lstm`` and ``klppo_lstm``) registered and its hyperparameter files used by default.

Each sub-command is the zoo's own, with its flags and behaviour unchanged (callbacks, ``VecNormalize``,
saving to ``<log folder>/<algo>/<env>_<run>/``); ``train`` builds an
:class:`sb3_npg.zoo.exp_manager.NPGExperimentManager`, the zoo's ``ExperimentManager`` with this package's
additions, where the zoo builds its own (:func:`sb3_npg.zoo.train.train`), and takes this package's tuning
flags (:func:`sb3_npg.zoo.tuning.tuning_parser`). Before handing over, the command line

* registers our algorithms with the zoo (:func:`sb3_npg.zoo.registry.register`),
* adds ``--algo npg`` when no ``--algo`` is given (``train``, ``enjoy``, ``record_video``),
* adds ``--conf-file <sb3_npg/zoo/hyperparams/<algo>.yml>`` to ``train`` when the algorithm is ours and
  no ``-conf``/``--conf-file`` is given (the zoo would otherwise look for ``<algo>.yml`` inside its
  own package),
* adds ``--num-threads 1`` to ``train`` and ``enjoy`` when no ``--num-threads`` is given: one torch
  thread per process (``--num-threads 0`` keeps torch's default of one thread per core). Small
  policies gain little from more threads, and processes that share the cores (several seeds, or a
  busy machine) slow down many times over when each runs several.
"""

import argparse
import functools
import importlib
import runpy
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple, NoReturn

from sb3_npg.version import __version__
from sb3_npg.zoo import tuning
from sb3_npg.zoo.algos import ALGOS
from sb3_npg.zoo.config import HYPERPARAMS_DIR
from sb3_npg.zoo.registry import default_conf_file, register

DEFAULT_ALGO = "npg"
# torch threads per process, unless ``--num-threads`` says otherwise (0 or less: torch's default)
DEFAULT_NUM_THREADS = 1


class _Command(NamedTuple):
    module: str  # the module holding the command (the zoo's, or ours for train)
    function: str | None  # function to call, or None to run the module as a script
    help: str


COMMANDS: dict[str, _Command] = {
    "train": _Command("sb3_npg.zoo.train", "train", "train an agent, or tune its hyperparameters with -optimize"),
    "enjoy": _Command("rl_zoo3.enjoy", "enjoy", "run a trained agent (add --no-render on a headless machine)"),
    "record_video": _Command("rl_zoo3.record_video", None, "record a video of a trained agent"),
    "plot_train": _Command("rl_zoo3.plots", "plot_train", "plot the training curves of one algorithm"),
    "plot_from_file": _Command("rl_zoo3.plots", "plot_from_file", "plot results saved by all_plots"),
    "all_plots": _Command("rl_zoo3.plots", "all_plots", "compare the evaluations of several algorithms"),
}
# Sub-commands that take ``--algo`` (the others take the zoo's own plotting flags)
_ALGO_COMMANDS = ("train", "enjoy", "record_video")
# Sub-commands that take the zoo's ``--num-threads``
_THREAD_COMMANDS = ("train", "enjoy")

_EPILOG = """\
examples:
  sb3-npg train --algo npg --env Pendulum-v1 -f logs -tb runs --seed 0
  sb3-npg enjoy --algo npg --env Pendulum-v1 -f logs --no-render -n 1000
  sb3-npg train --algo klppo --env CartPole-v1 -optimize --n-trials 50 --n-jobs 1 \\
      --storage sqlite:///klppo.db --study-name klppo-cartpole
  sb3-npg plot_train --algo npg --env Pendulum-v1 -f logs

train and enjoy run torch on one thread (--num-threads 1) unless --num-threads says otherwise;
--num-threads 0 gives torch's default (one thread per core), faster only for large networks on an
otherwise idle machine.

Distributed tuning: start the same `train ... -optimize` command, with the same --storage and
--study-name, on as many processes or machines as you like; they share the study's trials.
Use a PostgreSQL or MySQL URL across machines (postgresql://user:password@host/db), an SQLite URL
(sqlite:///study.db) or a journal file (a path ending in .log) on one machine. With a database, a
trial whose worker dies is failed after a grace period and queued again (train flags
--heartbeat-interval, --grace-period, --max-retry; `sb3-npg train --help` lists them).

Search space: -optimize searches the zoo's way by default (the update's parameters, rollout, minibatch,
discount, GAE lambda and network). --search-space update searches only the update's parameters of {algos}
(NPG's trust region, solver and critic fit; KLPPO's penalty, learning rate and epochs) and takes everything
else from the hyperparameter file's entry.

`sb3-npg <command> --help` lists the flags of a command (they are rl-baselines3-zoo's).
Hyperparameter files: {hyperparams}
"""


class _ParseError(Exception):
    pass


class _LenientParser(argparse.ArgumentParser):
    """An argument parser that raises instead of exiting, to peek at a few flags of a command line."""

    def error(self, message: str) -> NoReturn:
        raise _ParseError(message)


def _usage_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sb3-npg",
        description="Train, replay, tune and plot NPG and KLPPO agents with rl-baselines3-zoo.",
        epilog=_EPILOG.format(hyperparams=HYPERPARAMS_DIR, algos=", ".join(ALGOS)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sb3-npg {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        commands.add_parser(name, help=command.help, add_help=False)
    return parser


def with_defaults(command: str, args: Sequence[str]) -> list[str]:
    """
    The arguments of a zoo sub-command with this package's defaults added.

    ``--algo npg`` is added when no algorithm is given; for ``train`` with one of our algorithms,
    ``--conf-file`` pointing at the shipped hyperparameter file is added unless the user gave one;
    for ``train`` and ``enjoy``, ``--num-threads 1`` is added unless the user gave a thread count.
    Flags are recognised the way the zoo's parser reads them (``--algo=x``, unambiguous prefixes,
    ``-conf``); arguments that cannot be read are passed on untouched for the zoo to report.

    :param command: the sub-command (``"train"``, ``"enjoy"``, ...)
    :param args: its arguments, without the sub-command
    :return: the arguments to hand to the zoo
    """
    args = list(args)
    if command not in _ALGO_COMMANDS:
        return args
    peek = _LenientParser(add_help=False)
    peek.add_argument("--algo", default=None)
    if command == "train":
        peek.add_argument("-conf", "--conf-file", default=None)
    if command in _THREAD_COMMANDS:
        peek.add_argument("--num-threads", default=None)
    try:
        known, _ = peek.parse_known_args(args)
    except _ParseError:
        return args
    algo = known.algo
    if algo is None:
        algo = DEFAULT_ALGO
        args += ["--algo", algo]
    if command == "train" and algo in ALGOS and known.conf_file is None:
        args += ["--conf-file", default_conf_file(algo)]
    if command in _THREAD_COMMANDS and known.num_threads is None:
        args += ["--num-threads", str(DEFAULT_NUM_THREADS)]
    return args


def _load(command: _Command) -> Callable[..., None]:
    if command.function is None:
        module_name = command.module

        def run_script() -> None:
            runpy.run_module(module_name, run_name="__main__")

        return run_script
    return getattr(importlib.import_module(command.module), command.function)


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of ``sb3-npg``: ``sb3-npg <command> [flags]``, where the commands and flags are
    rl-baselines3-zoo's.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        _usage_parser().print_help(sys.stderr)
        raise SystemExit(2)
    if args[0].startswith("-"):
        # ``--help`` and ``--version`` exit here; any other flag needs a command first
        _usage_parser().parse_args(args)
        _usage_parser().error(f"a command must come first, got {args[0]!r}")

    name = args[0].replace("-", "_")
    if name not in COMMANDS:
        _usage_parser().error(f"command must be one of {', '.join(COMMANDS)}, got {args[0]!r}")

    args = args[1:]
    if name == "train":
        options, args = tuning.split_tuning_args(args)
    try:
        register()
        function = _load(COMMANDS[name])
    except ImportError as error:
        raise SystemExit(f"sb3-npg {name}: {error}") from error
    if name == "train":
        function = functools.partial(function, options)

    sys.argv = [f"sb3-npg {name}", *with_defaults(name, args)]
    try:
        function()
    except tuning.TuningError as error:
        raise SystemExit(f"sb3-npg {name}: {error}") from error
    except SystemExit as done:
        if name == "train" and done.code == 0 and {"-h", "--help"} & set(args):
            print("\n" + tuning.tuning_parser().format_help(), end="")  # after the zoo's flags
        raise


if __name__ == "__main__":
    main()
