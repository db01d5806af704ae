"""Self-describing model folders: model.keras + weights.npz + vocab.json + config.json + card.json.

`config.json` holds {"format", "domain", "model", "train", "codec"}; `card.json` holds data hash, sizes, metrics and
date. Loading needs nothing outside the folder. The numpy path reads weights.npz (exported from model.keras when
saved; a test proves they agree) so generation never imports TensorFlow. Saving writes to a temporary folder and
swaps it into place in one step, so an interrupted save never leaves a half-written model (or none at all).
Training checks its destination first (`check_model_destination`): only a new name, an empty folder or, with
--force, one of our model folders.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.config import from_dict
from app.core.modelconfig import ModelConfig
from app.core.vocab import Vocabulary
from app.errors import ModelFolderError, OptionError, OutputError

FORMAT_VERSION = 1
REQUIRED = ("model.keras", "weights.npz", "vocab.json", "config.json", "card.json")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def command_line() -> str:
    """The running command as a user would type it (`python -m app ...`), for model cards."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("__main__.py"):
        argv[0] = "python -m app"
    return " ".join(argv)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class ModelFolder:
    """What a model folder holds, loaded without TensorFlow."""

    path: Path
    vocab: Vocabulary
    model_config: ModelConfig
    config: dict[str, Any]
    card: dict[str, Any]
    weights: dict[str, np.ndarray] = field(repr=False)

    @property
    def domain(self) -> str:
        return self.config.get("domain", "")

    def stepper(self):
        from app.core.stepper import NumpyStepper

        return NumpyStepper(self.weights, self.model_config, self.vocab.size)

    def keras_model(self):
        """Load model.keras with safe_mode on (imports Keras)."""
        import keras

        import app.core.model  # noqa: F401  (registers custom layers)

        return keras.saving.load_model(self.path / "model.keras", safe_mode=True)


def load_model_folder(path: str | Path, domain: str | None = None) -> ModelFolder:
    p = Path(path)
    if not p.is_dir():
        from app.core.outputs import recover_folder

        recover_folder(p)  # a crash in the middle of a (non-Linux) replacement: put the old version back
    if not p.is_dir():
        example = {"names": "models/dinos", "music": "models/folk"}.get(domain or "", "models/dinos")
        raise ModelFolderError(f"model folder {str(p)!r} does not exist; train one with `python -m app "
                               f"{domain or 'names'} train` or pass an existing folder (e.g. {example})")
    missing = [f for f in REQUIRED if not (p / f).is_file()]
    if missing:
        raise ModelFolderError(f"model folder {str(p)!r} is missing {', '.join(missing)}; expected "
                               f"{', '.join(REQUIRED)} (retrain or copy the whole folder)")
    try:
        config = json.loads((p / "config.json").read_text(encoding="utf-8"))
        card = json.loads((p / "card.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{p}: config.json or card.json is not valid JSON ({exc})") from None
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt != FORMAT_VERSION:
        raise ModelFolderError(f"model folder {str(p)!r} has format {fmt!r}, this version reads format "
                               f"{FORMAT_VERSION}; retrain it with this version")
    if domain is not None and config.get("domain") != domain:
        raise ModelFolderError(f"model folder {str(p)!r} is a {config.get('domain')!r} model, expected a "
                               f"{domain!r} model")
    vocab = Vocabulary.load(p / "vocab.json")
    model_config = from_dict(ModelConfig, config.get("model", {}), what=f"{p}/config.json model")
    try:
        with np.load(p / "weights.npz") as z:
            weights = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile/ValueError/OSError: any damage means the same to the user
        raise ModelFolderError(f"{p}/weights.npz cannot be read ({exc}); the folder is damaged") from None
    return ModelFolder(p, vocab, model_config, config, card, weights)


def is_model_folder(path: str | Path) -> bool:
    """True when `path` is a folder whose config.json is one of ours (a JSON object with format and domain)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "format" in config and config.get("domain") in ("names", "music")


def check_model_destination(out: str | Path, *, force: bool = False, option: str = "--out") -> Path:
    """Check, before any training, that a model may be written at `out`; returns it as a Path.

    Allowed: a new name, an empty folder, or (with force) one of our model folders. Refused: an empty name, a
    file, and a folder holding anything else (it is never replaced, even with force). Leftovers of a crashed
    save beside `out` are cleaned first (app.core.outputs.recover_folder).
    """
    from app.core.outputs import recover_folder

    if not str(out).strip():
        raise OptionError(f"{option} is empty; give the model folder to write, e.g. {option} models/mymodel")
    p = Path(out)
    recover_folder(p)
    if not os.path.lexists(p):
        return p
    if not p.is_dir():
        raise OptionError(f"{option} {str(p)!r} is a file, not a model folder; choose a new folder name")
    entries = sorted(os.listdir(p))
    if not entries:
        return p
    if not is_model_folder(p):
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise OptionError(f"{option} {str(p)!r} already holds files that are not a model folder ({shown}); it is "
                          f"never replaced: choose a new folder name or an empty folder")
    if not force:
        try:
            config = json.loads((p / "config.json").read_text(encoding="utf-8"))
            m = config.get("model", {})
            what = (f"a {config.get('domain')} model ({m.get('cell', '?')}, {m.get('units', '?')} units, "
                    f"{m.get('layers', '?')} layer(s))")
        except (OSError, ValueError, AttributeError):
            what = "a model folder"
        raise OptionError(f"{option} {str(p)!r} is already {what}; pass --force to replace it with the new "
                          f"model (the old one stays until the new one is complete), or choose another {option}")
    return p


def save_model_folder(path: str | Path, *, keras_model, weights: dict[str, np.ndarray], vocab: Vocabulary,
                      config: dict[str, Any], card: dict[str, Any],
                      extra_files: dict[str, str | bytes] | None = None) -> Path:
    """Write the folder atomically: into a temporary sibling `.NAME.tmp-PID-*`, then swapped with any previous
    version in one step (app.core.outputs.replace_folder), so `path` always holds one complete model.

    Refuses (OutputError) to replace a non-empty folder that is not a model folder.
    """
    from app.core.outputs import recover_folder, replace_folder, temp_sibling

    dest = Path(path)
    recover_folder(dest)
    if dest.is_dir() and os.listdir(dest) and not is_model_folder(dest):
        raise OutputError(f"{str(dest)!r} holds files that are not a model folder; not replacing it")
    try:
        tmp = temp_sibling(dest)
    except OSError as exc:
        raise OutputError(f"cannot write model folder {str(dest)!r}: {exc.strerror}") from None
    try:
        keras_model.save(tmp / "model.keras")
        np.savez(tmp / "weights.npz", **weights)
        vocab.save(tmp / "vocab.json")
        for name, data in (extra_files or {}).items():
            target = tmp / name
            if isinstance(data, bytes):
                target.write_bytes(data)
            else:
                target.write_text(data, encoding="utf-8")
        (tmp / "card.json").write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n")
        (tmp / "config.json").write_text(json.dumps({"format": FORMAT_VERSION, **config}, indent=1) + "\n")
        replace_folder(tmp, dest)
    except OSError as exc:
        raise OutputError(f"cannot write model folder {str(dest)!r}: {exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def update_card(path: str | Path, key: str, value: Any) -> None:
    """Set card.json[key] = value in a model folder (atomic rewrite), e.g. a quality report's headline figures."""
    from app.core.outputs import atomic_write

    card_path = Path(path) / "card.json"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"cannot update {card_path}: {exc}") from None
    card[key] = value
    atomic_write(card_path, json.dumps(card, indent=1, ensure_ascii=False) + "\n")
