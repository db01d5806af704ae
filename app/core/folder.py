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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.config import check_range, from_dict
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


def library_versions() -> dict[str, str | None]:
    """Python, NumPy, TensorFlow and Keras versions (the imported modules' own, else the installed packages')."""
    import platform
    from importlib import metadata

    def version(module: str, *dists: str) -> str | None:
        mod = sys.modules.get(module)
        if mod is not None and getattr(mod, "__version__", None):
            return str(mod.__version__)
        for dist in dists:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return None

    return {"python": platform.python_version(), "numpy": np.__version__,
            "tensorflow": version("tensorflow", "tensorflow", "tensorflow-cpu"), "keras": version("keras", "keras")}


CARD_SCHEMA = 2


def make_card(*, name: str, domain: str, status: str, data: dict, model: Any, train: dict, history: dict,
              metrics: dict, seconds: float, parameters: int | None = None, **extra: Any) -> dict[str, Any]:
    """The model card of both domains (card.json). `data` describes the training data (names: the file; music: the
    corpus), `history` the per-epoch losses (nats/token), `metrics` the held-out figures. Extra keys go last."""
    from app import __version__

    val_loss = history.get("val_loss", [])
    return {
        "schema": CARD_SCHEMA, "name": name, "domain": domain, "status": status, "created": now_iso(),
        "app_version": __version__, "versions": library_versions(), "command": command_line(),
        "data": data, "model": model if isinstance(model, dict) else asdict(model), "train": train,
        "parameters": parameters,
        "epochs_done": len(history.get("loss", [])),
        "best_epoch": int(np.argmin(val_loss)) + 1 if val_loss else None,
        "train_seconds": round(seconds, 1),
        "history": history, "metrics": metrics, **extra,
    }


def card_data(card: dict) -> dict:
    """The card's training-data record (schema 2 `data`; music cards before it called it `corpus`)."""
    return card.get("data") or card.get("corpus") or {}


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
        import app.core.model  # noqa: F401,I001  (quiet TensorFlow import; registers custom layers)
        import keras

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
    config = _read_json(p / "config.json")
    card = _read_json(p / "card.json")
    fmt = config.get("format")
    if fmt != FORMAT_VERSION:
        raise ModelFolderError(f"model folder {str(p)!r} has format {fmt!r}, this version reads format "
                               f"{FORMAT_VERSION}; retrain it with this version")
    if domain is not None and config.get("domain") != domain:
        raise ModelFolderError(f"model folder {str(p)!r} is a {config.get('domain')!r} model, expected a "
                               f"{domain!r} model")
    vocab = Vocabulary.load(p / "vocab.json")
    check_vocab(vocab, p / "vocab.json")
    try:
        model_config = from_dict(ModelConfig, config.get("model", {}), what=f"{p}/config.json model")
        check_codec(config.get("domain"), config.get("codec", {}), f"{p}/config.json codec")
    except OptionError as exc:
        raise ModelFolderError(f"{exc}; the folder is damaged or was edited by hand, retrain it") from None
    try:
        with np.load(p / "weights.npz") as z:
            weights = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile/ValueError/OSError: any damage means the same to the user
        raise ModelFolderError(f"{p}/weights.npz cannot be read ({exc}); the folder is damaged") from None
    from app.core.stepper import check_weights

    arch = config.get("arch")
    basic = arch is None or (isinstance(arch, dict) and arch.get("name") == "basic")
    check_weights(weights, model_config, vocab.size, where=f"{p}/weights.npz", layout=basic)
    return ModelFolder(p, vocab, model_config, config, card, weights)


def _read_json(path: Path) -> dict:
    """A model folder's JSON object file; any damage (not UTF-8, not JSON, not an object) is a ModelFolderError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelFolderError(f"{path} cannot be read ({exc.strerror}); the folder is damaged") from None
    except UnicodeDecodeError as exc:
        raise ModelFolderError(f"{path} is not UTF-8 text (byte {exc.start}); the folder is damaged") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelFolderError(f"{path} is not valid JSON ({str(exc)[:120]}); the folder is damaged") from None
    if not isinstance(data, dict):
        raise ModelFolderError(f"{path} holds a JSON {type(data).__name__}, expected an object; the folder is "
                               f"damaged")
    return data


# config.json "codec" fields by domain: name -> (kind, lo, hi). Fields may be absent (readers use defaults); a
# present field must have this form. Kinds: "int", "number" (finite), "bool", "signature" ([numerator, denominator]),
# "choice" (one of the values in lo).
CODEC_FIELDS: dict[str, dict[str, tuple]] = {
    "music": {"min_pitch": ("int", 0, 127), "max_pitch": ("int", 0, 127), "steps_per_quarter": ("int", 1, 96),
              "time_signature": ("signature", 1, 64), "qpm": ("number", 1.0, 1000.0),
              # "C": the training pieces were transposed to C major / A minor (`music corpus --transpose C`), so
              # generation in another key transposes (app.music.scales.home_key)
              "transpose": ("choice", ("C",), None)},
    "names": {"lowercase": ("bool", None, None)},
}


def check_codec(domain: Any, codec: Any, what: str) -> None:
    """Raise OptionError unless `codec` (config.json's "codec") fits CODEC_FIELDS[domain]."""
    if domain not in CODEC_FIELDS:
        raise OptionError(f"{what}: unknown domain {domain!r}, expected one of {', '.join(CODEC_FIELDS)}")
    if not isinstance(codec, dict):
        raise OptionError(f"{what}: expected a JSON object, got {type(codec).__name__}")
    for name, (kind, lo, hi) in CODEC_FIELDS[domain].items():
        if name not in codec:
            continue
        v = codec[name]
        if kind == "bool":
            if not isinstance(v, bool):
                raise OptionError(f"{what}: {name} must be true or false, got {v!r}")
        elif kind == "choice":
            if v not in lo:
                raise OptionError(f"{what}: {name} must be one of {', '.join(map(repr, lo))}, got {v!r}")
        elif kind == "signature":
            if not (isinstance(v, (list, tuple)) and len(v) == 2
                    and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
                    and lo <= v[0] <= hi and v[1] in (1, 2, 4, 8, 16, 32, 64)):
                raise OptionError(f"{what}: {name} must be [numerator 1..{hi}, denominator a power of 2 up to "
                                  f"64], got {v!r}")
        else:
            if kind == "int" and (isinstance(v, bool) or not isinstance(v, int)):
                raise OptionError(f"{what}: {name} must be a whole number, got {v!r}")
            check_range(f"{what}: {name}", v, lo, hi)
    if domain == "music" and codec.get("min_pitch", 0) > codec.get("max_pitch", 127):
        raise OptionError(f"{what}: min_pitch {codec['min_pitch']} is above max_pitch {codec['max_pitch']}")


def check_vocab(vocab: Vocabulary, where: Path | str) -> None:
    """Raise ModelFolderError unless the vocabulary's form fits its kind: for "chars" every non-special token is
    one character (a name is decoded character by character)."""
    if vocab.size < 1:
        raise ModelFolderError(f"{where}: the vocabulary is empty; the folder is damaged")
    if vocab.kind == "chars":
        bad = [t for t in vocab.tokens[vocab.n_special:] if len(t) != 1]
        if bad:
            raise ModelFolderError(f"{where}: a names vocabulary holds single characters, found "
                                   f"{', '.join(map(repr, bad[:5]))}; the folder is damaged or was edited by hand")


def is_model_folder(path: str | Path) -> bool:
    """True when `path` is a folder whose config.json is one of ours (a JSON object with format and domain)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "format" in config and config.get("domain") in ("names", "music")


def _card_status(path: Path) -> str | None:
    try:
        card = json.loads((path / "card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card.get("status") if isinstance(card, dict) else None


def check_model_destination(out: str | Path, *, force: bool = False, option: str = "--out") -> Path:
    """Check, before any training, that a model may be written at `out`; returns it as a Path.

    Allowed: a new name, an empty folder, the checkpoint of an unfinished run (status "training" and `<out>.run/`: the
    same command continues it), or (with force) one of our model folders. Refused: an empty name, a
    file, and a folder holding anything else (it is never replaced, even with force). Leftovers of a crashed
    save beside `out` are cleaned first (app.core.outputs.recover_folder).
    """
    from app.core.outputs import folder_destination

    p, entries = folder_destination(out, option, "model folder", "models/mymodel")
    if not entries:
        return p
    if not is_model_folder(p):
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise OptionError(f"{option} {str(p)!r} already holds files that are not a model folder ({shown}); it is "
                          f"never replaced: choose a new folder name or an empty folder")
    if p.with_name(p.name + ".run").is_dir() and _card_status(p) == "training":
        # the per-epoch checkpoint of an unfinished run of ours (app.core.runstate: `<out>.run/`): the same command
        # continues it, and RunState refuses a run folder made by other settings
        return p
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
