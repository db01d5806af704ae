"""Command line: `python -m app {names,music,reference,web} ...`.

The CLI is thin: each sub-command module registers its parser and calls the library. Heavy imports (TensorFlow,
music21, matplotlib) happen inside the handlers, so `--help` and numpy-only generation start fast. Errors caused by
input (`AppError`) print one line and exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from app.errors import AppError

# (command, module with `register(subparsers)`, help)
COMMANDS = (
    ("names", "app.names.cli", "generate, train and evaluate character-level name models"),
    ("music", "app.music.cli", "build corpora, train, generate and evaluate melody models"),
    ("reference", "app.reference.cli", "run the seed documents' numpy RNNs (oracles and baselines)"),
    ("web", "app.web.cli", "serve the local web page"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="Generate music and names with LSTMs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module, help_text in COMMANDS:
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.register(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
