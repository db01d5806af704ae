"""`python -m app music ...`: each group of sub-commands lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import importlib

MODULES = ("app.music.corpus_cli", "app.music.model_cli", "app.music.report_cli", "app.music.shards_cli")


def register(parser) -> None:
    sub = parser.add_subparsers(dest="music_command", metavar="SUBCOMMAND")
    sub.required = True
    for module in MODULES:
        importlib.import_module(module).register(sub)
