"""Where the default model and corpus folders live, independent of the working directory.

Search order for a shipped resource such as "models/folk" (the first that exists wins):
  1. $APP_HOME/<resource>               APP_HOME: a folder laid out like the repository (models/, data/)
  2. <project root>/<resource>          the checkout this package runs from (source tree or editable install)
  3. <sys.prefix>/share/lstm-app/<resource>   where `pip install .` puts the shipped models (pyproject data-files)
A missing resource is an error that lists every place looked at. Folders the app writes by itself (the default
corpus, built on first use) go to the first writable of $APP_HOME, the project root, and
$XDG_DATA_HOME/lstm-app (~/.local/share/lstm-app).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.errors import ModelFolderError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARE = Path(sys.prefix) / "share" / "lstm-app"
DEFAULT_MODELS = {"names": "models/dinos", "music": "models/folk"}
DEFAULT_CORPUS = "data/corpora/default"


def homes() -> list[Path]:
    """The folders searched, in order (APP_HOME only when set; the project root only when it holds models/)."""
    out = []
    if os.environ.get("APP_HOME"):
        out.append(Path(os.environ["APP_HOME"]).expanduser())
    if (PROJECT_ROOT / "models").is_dir() and (PROJECT_ROOT / "app").is_dir():
        out.append(PROJECT_ROOT)
    out.append(SHARE)
    return out


def find(resource: str) -> Path | None:
    """The first existing <home>/<resource>, or None."""
    for home in homes():
        if (home / resource).exists():
            return home / resource
    return None


def locate(resource: str, what: str) -> Path:
    """Like find, but a missing resource is a ModelFolderError saying where it looked."""
    found = find(resource)
    if found is None:
        looked = ", ".join(str(h / resource) for h in homes())
        raise ModelFolderError(f"the default {what} {resource!r} was not found; looked in {looked}. Set APP_HOME to "
                               f"a folder holding {resource}, or pass the folder explicitly")
    return found


def default_model(domain: str) -> Path:
    """The shipped model folder of `domain` ("names" -> models/dinos, "music" -> models/folk)."""
    return locate(DEFAULT_MODELS[domain], f"{domain} model")


def writable_home() -> Path:
    """Where the app may create default folders (e.g. the default corpus)."""
    candidates = [h for h in homes() if h != SHARE]
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    candidates.append(Path(xdg) / "lstm-app")
    for c in candidates:
        probe = c if c.exists() else c.parent
        if os.access(probe, os.W_OK):
            return c
    return candidates[-1]


def default_corpus() -> Path:
    """The default corpus folder: an existing one if any, else where it will be built."""
    return find(DEFAULT_CORPUS) or writable_home() / DEFAULT_CORPUS
