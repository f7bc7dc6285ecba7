"""
Command-line pieces of the benchmark scripts.

- :func:`make_parser`: a parser described by the first paragraph of the script's docstring;
- :func:`add_variant_argument`, :func:`parse_variants`: ``--variant NAME KEY=VALUE ...`` (``learning.py``, ``cost.py``);
- :func:`parse_timesteps`: ``--timesteps ENV=N ...`` (``learning.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

Variant = tuple[str, dict[str, str]]
"""A ``--variant``: its name and its overrides ``{key: value}`` (values as given, still unparsed)."""


def make_parser(doc: str | None, show_defaults: bool = True) -> argparse.ArgumentParser:
    """
    The parser of a benchmark script.

    :param doc: the script's docstring: its first paragraph describes the command
    :param show_defaults: whether the help of each option shows its default
    :return: the parser, without arguments
    """
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0].strip() if doc else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter if show_defaults else argparse.HelpFormatter,
    )


def add_variant_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """
    Add ``--variant NAME KEY=VALUE ...`` (repeatable), read by :func:`parse_variants`.

    :param parser: the parser
    :param help: what the script does with the variants
    """
    parser.add_argument("--variant", nargs="+", action="append", metavar=("NAME", "KEY=VALUE"), help=help)


def parse_variants(items: Sequence[Sequence[str]] | None) -> list[Variant]:
    """
    ``--variant NAME KEY=VALUE ...`` arguments as ``(name, {key: value})`` pairs (values still unparsed).

    :param items: one list per ``--variant``: the name, then the overrides
    :return: the variants, or ``[("", {})]`` (the entries as they are) when there are none
    """
    if not items:
        return [("", {})]
    variants: list[Variant] = []
    for name, *pairs in items:
        if not name or "=" in name or ":" in name:
            raise argparse.ArgumentTypeError(f"--variant takes NAME KEY=VALUE ..., NAME without '=' or ':', got {name!r}")
        if name in {known for known, _ in variants}:
            raise argparse.ArgumentTypeError(f"--variant {name} is given twice")
        overrides = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not key or not sep or not value:
                raise argparse.ArgumentTypeError(f"--variant {name}: overrides are KEY=VALUE, got {pair!r}")
            overrides[key] = value
        variants.append((name, overrides))
    return variants


def parse_timesteps(items: Sequence[str]) -> dict[str, int]:
    """
    ``--timesteps`` arguments (``ENV=N``, ``N`` may be written ``2e5``) as a dictionary.

    :param items: the arguments
    :return: budget by environment id
    """
    budgets = {}
    for item in items:
        env_id, _, value = item.partition("=")
        try:
            budget = int(float(value))
        except ValueError:
            budget = 0
        if not env_id or budget <= 0:
            raise argparse.ArgumentTypeError(f"--timesteps takes ENV=N with N > 0, got {item!r}")
        budgets[env_id] = budget
    return budgets
