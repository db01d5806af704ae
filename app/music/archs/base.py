"""The arch registry: one entry per model family of `music train --arch NAME` (no TensorFlow import here).

An arch is a name, a frozen settings dataclass (each field's metadata holds its CLI help; settings are recorded in
the model folder's config.json as {"arch": {"name": ..., "settings": {...}}}) and two modules:
  numpy module  make_stepper(weights, model_cfg, settings, vocab_size, *, time_signature, spq) -> stepper with
                `vocab_size`, `zero_state(b)`, `step(ids (b,), state) -> (token logits (b, V), state)`,
                `select(state, rows)`, `run(ids (b, T), metres=None) -> token logits (b, T, V)`, and optionally
                `runner()` -> its batch-1 runner (app.core.runner: preallocated buffers, what n = 1 generation runs);
                training_arrays(pieces, metres, settings, vocab_size, spq, tx) -> (X, Y, W) chunks of tx steps
                (X an int array or a dict of arrays: the trainer's inputs; Y labels; W weights, 0 on padding)
  keras module  build_trainer(model_cfg, settings, vocab_size, seed) (whole-sequence form, logits over labels),
                export_weights(model, model_cfg) -> numpy dict, import_weights(model, model_cfg, weights),
                inference_model(weights, model_cfg, settings, vocab_size, Ty, time_signature, spq) (the document's
                step-by-step loop, the chosen token fed back)
Every stepper returns *token* logits (label probabilities resolved into tokens), so sampling, beam search, key and
range masks and held-out NLL work the same way for every arch. A model folder without "arch" is `basic`.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

from app.core.config import from_dict
from app.errors import ModelFolderError, OptionError


@dataclass(frozen=True)
class Arch:
    name: str
    summary: str
    settings: type
    numpy_module: str
    keras_module: str
    metre_input: bool  # the time signature and bar position are inputs: one model writes any metre

    def numpy(self):
        return importlib.import_module(self.numpy_module)

    def keras(self):
        return importlib.import_module(self.keras_module)

    def make_settings(self, values: dict | None = None):
        return from_dict(self.settings, dict(values or {}), what=f"--arch {self.name} settings")


ARCHS: dict[str, Arch] = {}


def register(arch: Arch) -> Arch:
    if arch.name in ARCHS:
        raise ValueError(f"arch {arch.name!r} is registered twice")
    ARCHS[arch.name] = arch
    return arch


def get_arch(name: str) -> Arch:
    _load_all()
    if name not in ARCHS:
        raise OptionError(f"unknown arch {name!r}; choose one of {', '.join(ARCHS)}")
    return ARCHS[name]


def arch_names() -> tuple[str, ...]:
    _load_all()
    return tuple(ARCHS)


def _load_all() -> None:
    from app.music.archs import attention, basic, lookback  # noqa: F401  (each registers itself)


def folder_arch(config: dict) -> tuple[Arch, Any]:
    """(arch, settings) recorded in a model folder's config.json; no "arch" key means basic."""
    spec = config.get("arch") or {"name": "basic"}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ModelFolderError(f"config.json has a malformed arch entry {spec!r}; expected "
                               f"{{\"name\": ..., \"settings\": {{...}}}}")
    try:
        arch = get_arch(spec["name"])
    except OptionError:
        raise ModelFolderError(f"the model folder's arch {spec['name']!r} is unknown to this version (known: "
                               f"{', '.join(arch_names())}); use a newer version or retrain the model") from None
    return arch, arch.make_settings(spec.get("settings"))


def arch_config(arch: Arch, settings) -> dict:
    return {"name": arch.name, "settings": _jsonable(dataclasses.asdict(settings))}


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def stepper_for(folder, time_signature=None):
    """The numpy stepper of a loaded model folder (app.core.folder.ModelFolder) for generation in
    `time_signature` (default: the model's most common metre, config codec.time_signature)."""
    from app.core.stepper import check_weights

    arch, settings = folder_arch(folder.config)
    codec = folder.config.get("codec", {})
    ts = tuple(time_signature or codec.get("time_signature") or (4, 4))
    spq = int(codec.get("steps_per_quarter", 4))
    check_weights(folder.weights, folder.model_config, folder.vocab.size, where=f"{folder.path}/weights.npz",
                  shapes=arch.numpy().weight_shapes(folder.model_config, settings, folder.vocab.size, spq))
    try:
        return arch.numpy().make_stepper(folder.weights, folder.model_config, settings, folder.vocab.size,
                                         time_signature=ts, spq=spq)
    except (KeyError, ValueError, IndexError) as exc:  # arrays missing or of the wrong shape for this arch
        raise ModelFolderError(f"{folder.path}/weights.npz does not fit a {arch.name} model with this config and "
                               f"vocabulary ({type(exc).__name__}: {exc}); the folder's files do not belong "
                               f"together") from None


def help_of(field) -> str:
    return field.metadata.get("help", "")


def add_arch_arguments(parser) -> None:
    """--arch and one flag per settings field of every arch (e.g. --lookbacks 1,2,4,8, --attn-length 64)."""
    parser.add_argument("--arch", choices=arch_names(),
                        help="model family: " + "; ".join(f"{a.name}: {a.summary}" for a in ARCHS.values())
                        + " (default basic; with --from or --resume: the parent's)")
    fields: dict[str, tuple[list[str], Any]] = {}
    for arch in ARCHS.values():
        for f in dataclasses.fields(arch.settings):
            fields.setdefault(f.name, ([], f))[0].append(arch.name)
    for name, (owners, f) in fields.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=f"arch_{name}", metavar="V",
                            help=f"({', '.join(owners)}) {help_of(f)}")


def settings_from_args(arch: Arch, args) -> dict:
    """The settings given on the command line for `arch`; a flag of another arch is an error."""
    given = {k[5:]: v for k, v in vars(args).items() if k.startswith("arch_") and v is not None}
    names = {f.name: f for f in dataclasses.fields(arch.settings)}
    other = sorted(set(given) - set(names))
    if other:
        raise OptionError(f"--{', --'.join(o.replace('_', '-') for o in other)} do(es) not apply to --arch "
                          f"{arch.name}")
    out = {}
    for k, v in given.items():
        default = names[k].default
        try:
            if isinstance(default, tuple):
                items = [x.strip() for x in str(v).split(",") if x.strip()]
                out[k] = tuple(type(default[0])(x) if default else x for x in items)
            else:
                out[k] = type(default)(v)
        except ValueError:
            raise OptionError(f"--{k.replace('_', '-')}: cannot read {v!r} ({help_of(names[k])})") from None
    return out
