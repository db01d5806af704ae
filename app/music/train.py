"""Train, resume and fine-tune melody models: corpus token pieces -> whole-sequence Keras model -> model folder.

Data layout (the course's, on whole sequences): a piece [s0 .. sn-1] becomes X = [x0, s0 .. sn-2] (x0 = id -1,
the zero input) and Y = [s0 .. sn-1], then X/Y are cut into chunks of `tx` steps (stride `tx`, the last chunk
padded with weight 0). A chunk that starts inside a piece starts from zero state, as the course's windows do.
Training runs the fast form (`app.core.model.build_model`: LSTM(return_sequences=True) + Dense), whose weights are
the document's LSTM_cell/densor weights (see app.music.models).

Checkpoints: after every epoch the whole model folder `out` is saved (atomically) with card["status"] =
"training" and the epoch count, so an interrupted run (Ctrl-C) leaves the last finished epoch as a usable model;
`resume=True` continues from it (weights, history, epoch count and the optimizer state saved in model.keras: Adam's
moments and iteration count). At the end the best epoch (lowest validation loss; early stopping) is saved with
status "done". A run killed outright (kill -9) is continued by running the same command again: Keras
BackupAndRestore in `<out>.run/` (app.core.runstate) restores the last finished epoch with the optimizer state.
Distribution (`train_cfg.distribute`, app.core.distribute): the model is built and compiled in the strategy's
scope, batch_size is per replica, and only the chief writes files.

Evaluation (`evaluate_pieces`) scores whole validation pieces with the numpy stepper on the same tokens as the
n-gram baselines of app.core.ngram: a piece [s0 .. sn] is scored on s1 .. sn (each given everything before it).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.folder import card_data, check_model_destination, load_model_folder, make_card, save_model_folder
from app.core.modelconfig import ModelConfig, TrainConfig
from app.core.vocab import Vocabulary
from app.errors import DataError, ModelFolderError, OptionError

# Named presets (model, training); "medium" holds the shipped folk model's settings (see BENCHMARKS.md for how they
# were chosen and what they reach); "small" and "large" are untuned starting points for smaller/larger corpora.
PRESETS: dict[str, tuple[ModelConfig, TrainConfig]] = {
    "small": (ModelConfig(cell="lstm", units=128, layers=1, dropout=0.1, input="onehot"),
              TrainConfig(epochs=30, batch_size=32, learning_rate=3e-3, lr_decay=0.92, clipnorm=1.0, patience=4)),
    "medium": (ModelConfig(cell="lstm", units=256, layers=1, dropout=0.0, input="onehot"),
               TrainConfig(epochs=24, batch_size=32, learning_rate=3e-3, lr_decay=0.92, clipnorm=1.0, patience=4,
                           seed=0, val_fraction=0.1)),
    "large": (ModelConfig(cell="lstm", units=512, layers=2, dropout=0.2, input="embedding", embed_dim=64),
              TrainConfig(epochs=24, batch_size=32, learning_rate=2e-3, lr_decay=0.92, clipnorm=1.0, patience=4)),
}
DEFAULT_MODEL, DEFAULT_TRAIN = PRESETS["medium"]
DEFAULT_TX = 256
MAX_TX = 4096


# --- data ----------------------------------------------------------------------------------------------------------
def sequence_chunks(pieces: Sequence[np.ndarray], tx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces of ids -> X, Y int32 and W float32, all (chunks, tx); see the module docstring."""
    if not 1 <= tx <= MAX_TX:
        raise OptionError(f"--tx must be 1..{MAX_TX} steps, got {tx}")
    xs, ys, ws = [], [], []
    for p in pieces:
        p = np.asarray(p, np.int32)
        if p.size == 0:
            continue
        x = np.concatenate([[-1], p[:-1]]).astype(np.int32)
        n = len(p)
        m = math.ceil(n / tx) * tx
        xp = np.zeros(m, np.int32)
        yp = np.zeros(m, np.int32)
        wp = np.zeros(m, np.float32)
        xp[:n], yp[:n], wp[:n] = x, p, 1.0
        xs.append(xp.reshape(-1, tx))
        ys.append(yp.reshape(-1, tx))
        ws.append(wp.reshape(-1, tx))
    if not xs:
        raise DataError("no training data: every piece is empty")
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def evaluate_pieces(stepper, pieces: Sequence[np.ndarray], batch: int = 256, metres: Sequence | None = None) -> dict:
    """Held-out NLL (nats/step), perplexity and next-step accuracy on s1..sn of each piece (n-gram convention).

    metres: one list of (step, num, den) changes per piece, for metre-conditioned archs (stepper.run(x, metres))."""
    from app.core.metrics import masked_nll, nll_summary

    if metres is not None:
        metres = [m for p, m in zip(pieces, metres) if len(p) >= 2]
    pieces = [np.asarray(p, np.int64) for p in pieces if len(p) >= 2]
    if not pieces:
        raise DataError("no validation piece has 2 or more steps to score")
    order = np.argsort([len(p) for p in pieces])
    total, correct, count = 0.0, 0, 0
    for i in range(0, len(order), batch):
        group = [pieces[j] for j in order[i:i + batch]]
        length = max(len(p) for p in group)
        x = np.zeros((len(group), length), np.int64)
        y = np.zeros((len(group), length), np.int64)
        w = np.zeros((len(group), length), np.float64)
        for r, p in enumerate(group):
            x[r, 0] = -1
            x[r, 1:len(p)] = p[:-1]
            y[r, :len(p)] = p
            w[r, 1:len(p)] = 1.0  # s0 is not scored (n-gram convention)
        kw = {}
        if getattr(stepper, "tune_of", None) is not None and stepper.ctx.tune:  # each piece's own tune classes
            kw["tunes"] = [stepper.tune_of(p) for p in group]
        logits = (stepper.run(x, **kw) if metres is None
                  else stepper.run(x, [metres[j] for j in order[i:i + batch]], **kw))
        nll, n = masked_nll(logits, y, w)
        total += nll * n
        correct += int((logits.argmax(-1) == y)[w > 0].sum())
        count += n
    summary = nll_summary(total / count, count, unit="step")
    summary.pop("tokens")
    return {**summary, "accuracy": correct / count, "steps": count, "pieces": len(pieces)}


def add_tune_class_cost(metrics: dict, arch_spec: dict, settings, pieces, metres, spq: int) -> dict:
    """For a tune-conditioned model (arch_spec holds "tune_prior"), whose held-out NLL is given each piece's tune
    classes: add what choosing them costs under the prior, per scored step, and the NLL with that cost included
    (comparable with models that are given nothing)."""
    if "tune_prior" not in arch_spec:
        return metrics
    from app.music.archs.features import tune_class_nats

    per_step = tune_class_nats(arch_spec["tune_prior"], pieces, metres, settings.tune_classes, spq) / metrics["steps"]
    metrics.update(tune_classes_nats_per_step=per_step, nll_with_tune_classes=metrics["nll_nats_per_step"] + per_step)
    return metrics


def map_vocab(corpus_vocab: Vocabulary, model_vocab: Vocabulary) -> np.ndarray | None:
    """Id map corpus -> model (None when identical). Error if the corpus has a token the model lacks."""
    if corpus_vocab.tokens == model_vocab.tokens:
        return None
    missing = [t for t in corpus_vocab.tokens if t not in model_vocab]
    if missing:
        raise ModelFolderError(
            f"the corpus vocabulary ({corpus_vocab.describe(60)}) has tokens the model does not know: "
            f"{', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''} (model: {model_vocab.describe(60)}); "
            f"rebuild the corpus with the model's pitch range (python -m app music corpus --min-pitch/--max-pitch) "
            f"or train a new model without --from")
    return np.array([model_vocab.id(t) for t in corpus_vocab.tokens], np.int32)


def corpus_fingerprint(pieces: Sequence[np.ndarray]) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in pieces:
        a = np.asarray(p, np.int32)
        h.update(len(a).to_bytes(8, "little"))
        h.update(a.tobytes())
    return h.hexdigest()


# --- training ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class MusicData:
    """What training needs from a corpus: token pieces, vocabulary and grid metadata."""

    train: list[np.ndarray]
    val: list[np.ndarray]
    vocab: Vocabulary
    codec: dict  # {"min_pitch", "max_pitch", "steps_per_quarter", "qpm", "time_signature"}
    source: dict  # {"corpus": path, "sha256": ..., ...} recorded in the model card
    train_metres: list | None = None  # per piece: metre changes [(step, num, den), ...]; None: codec time_signature
    val_metres: list | None = None

    def metres(self, which: str) -> list:
        """Metre changes of each train or val piece (app.music.archs.features.piece_metre's convention)."""
        given = self.train_metres if which == "train" else self.val_metres
        pieces = self.train if which == "train" else self.val
        if given is not None:
            if len(given) != len(pieces):
                raise DataError(f"{len(given)} metres for {len(pieces)} {which} pieces")
            return list(given)
        num, den = self.codec.get("time_signature") or (4, 4)
        return [[(0, int(num), int(den))]] * len(pieces)
    stream: object | None = None  # an app.music.shards.ShardSet: training pieces streamed from disk (train == [])


def _card(out: Path, data: MusicData, model_cfg, train_cfg, tx, history, status, seconds, metrics=None,
          parent=None) -> dict:
    if data.stream is not None:
        from app.music.shards import shard_fingerprint

        stream = data.stream
        train_facts = {"train_pieces": stream.train_pieces, "train_steps": stream.train_tokens, "streamed": True,
                       "shards": len(stream.files), "tokens_sha256": shard_fingerprint(stream.manifest)}
    else:
        train_facts = {"train_pieces": len(data.train), "train_steps": int(sum(len(p) for p in data.train)),
                       "tokens_sha256": corpus_fingerprint(list(data.train) + list(data.val))}
    data_record = {**data.source, **train_facts, "val_pieces": len(data.val),
                   "val_steps": int(sum(len(p) for p in data.val))}
    return make_card(name=out.name, domain="music", status=status, data=data_record, model=model_cfg,
                     train={**dataclasses.asdict(train_cfg), "tx": tx}, history=history, metrics=metrics or {},
                     seconds=seconds, fine_tuned_from=parent)


def train_music(data: MusicData, out: str | Path, model_cfg: ModelConfig = DEFAULT_MODEL,
                train_cfg: TrainConfig = DEFAULT_TRAIN, *, tx: int = DEFAULT_TX, resume: bool = False,
                from_model: str | Path | None = None, log_dir: str | Path | None = None, progress: bool = True,
                baselines: bool = True, hooks: Sequence = (), force: bool = False, arch: str | None = None,
                arch_settings: dict | None = None, placement=None) -> dict:
    """Train (or resume, or fine-tune `from_model`) on `data`, checkpointing `out` each epoch. Returns the card.

    Unless resuming, `out` is checked first (app.core.folder.check_model_destination): an existing model folder
    is replaced only with `force`, a folder holding anything else never.
    arch: a name of app.music.archs (default basic; with resume/from_model the folder's arch, and asking for another
    one is an error: weights of one arch do not fit another); arch_settings: its settings (dict of field values).
    placement: an `app.core.distribute.Placement` (default: `train_cfg.distribute`); only its chief writes `out`,
    the TensorBoard logs and the run folder `<out>.run/` (Keras BackupAndRestore: running the same call again
    after a crash, even kill -9, continues from the last finished epoch with the optimizer state)."""
    from app.music.archs.base import arch_config, get_arch

    if resume and from_model is not None:
        raise OptionError("use either --resume (continue an interrupted run in --out) or --from (fine-tune)")
    out = Path(out) if resume else check_model_destination(out, force=force)
    vocab, train_p, val_p = data.vocab, list(data.train), list(data.val)
    if not train_p and data.stream is None:
        raise DataError("the corpus has no training pieces")
    if not val_p:
        raise DataError("the corpus has no validation pieces; rebuild it with a validation split")
    init_weights, history, parent, optimizer_state = None, {}, None, None
    if resume:
        try:
            folder = load_model_folder(out, domain="music")
        except ModelFolderError as exc:
            raise ModelFolderError(f"cannot resume: {exc}") from None
        if folder.vocab.tokens != vocab.tokens:
            raise ModelFolderError(f"cannot resume {out}: its vocabulary ({folder.vocab.describe(40)}) differs from "
                                   f"the corpus ({vocab.describe(40)})")
        model_cfg = folder.model_config
        saved = folder.config.get("train", {})
        # Adam's restored iteration count drives the per-epoch learning-rate decay (decay every steps-per-epoch
        # iterations): another batch size or schedule would decay it at another rate (a run resumed at batch 32
        # after batch 8 had decayed its learning rate to ~1e-9 and stopped learning)
        changed = [f"--{k.replace('_', '-')} {getattr(train_cfg, k)} (the run used {saved[k]})"
                   for k in ("batch_size", "learning_rate", "lr_decay")
                   if k in saved and getattr(train_cfg, k) != saved[k]]
        if changed:
            raise OptionError(f"cannot resume {out} with other training settings: {', '.join(changed)}; leave them "
                              f"out to continue the run as it was, or train a new model (--from {out} fine-tunes)")
        arch_obj, settings = _parent_arch(folder, arch, arch_settings, out, "resume")
        history = {k: list(v) for k, v in folder.card.get("history", {}).items()}
        init_weights, parent = folder.weights, folder.card.get("fine_tuned_from")
        optimizer_state = folder
        tx = int(folder.config.get("train", {}).get("tx", tx))
    elif from_model is not None:
        if data.stream is not None:
            raise OptionError("--from (fine-tuning) reads the corpus in memory; pass a corpus folder, not shards")
        folder = load_model_folder(from_model, domain="music")
        arch_obj, settings = _parent_arch(folder, arch, arch_settings, from_model, "fine-tune")
        spq_model = folder.config.get("codec", {}).get("steps_per_quarter")
        if spq_model is not None and spq_model != data.codec.get("steps_per_quarter"):
            raise ModelFolderError(f"{from_model} uses {spq_model} steps per quarter, the corpus "
                                   f"{data.codec.get('steps_per_quarter')}; rebuild the corpus with "
                                   f"--steps-per-quarter {spq_model}")
        idmap = map_vocab(vocab, folder.vocab)
        if idmap is not None:
            train_p = [idmap[p] for p in train_p]
            val_p = [idmap[p] for p in val_p]
        vocab = folder.vocab
        model_cfg = folder.model_config
        init_weights = folder.weights
        codec_meta = dict(folder.config.get("codec", {}))
        data = dataclasses.replace(data, train=train_p, val=val_p, vocab=vocab,
                                   codec={**data.codec, "min_pitch": codec_meta.get("min_pitch"),
                                          "max_pitch": codec_meta.get("max_pitch")})
        parent = {"path": str(from_model), "name": folder.card.get("name"),
                  "corpus_sha256": card_data(folder.card).get("sha256")}
    else:
        arch_obj = get_arch(arch or "basic")
        settings = arch_obj.make_settings(arch_settings)
    if data.codec.get("mode") == "poly" and arch_obj.name != "basic":
        raise OptionError(f"a polyphonic corpus trains the basic arch (its tokens are not one per grid step, which "
                          f"--arch {arch_obj.name} reads); leave out --arch")
    if arch_obj.name != "basic" and (model_cfg.cell, model_cfg.layers, model_cfg.input) != ("lstm", 1, "onehot"):
        raise OptionError(f"--arch {arch_obj.name} has one LSTM layer with one-hot inputs; got --cell "
                          f"{model_cfg.cell}, --layers {model_cfg.layers}, input {model_cfg.input}")
    if arch_obj.name == "attention" and model_cfg.recurrent_dropout > 0:
        raise OptionError(f"--arch attention has no recurrent dropout (its cell is our own); got --recurrent-dropout "
                          f"{model_cfg.recurrent_dropout}: leave it out, or use --dropout (before the output layer)")
    epochs_done = len(history.get("loss", []))
    if epochs_done >= train_cfg.epochs:
        raise OptionError(f"{out} has already run {epochs_done} epochs; ask for more with --epochs "
                          f"(> {epochs_done}) to resume")

    from app.core.distribute import make_placement
    from app.core.runstate import RunState
    from app.core.train import EpochHook, fit

    placement = placement or make_placement(train_cfg.distribute)
    global_batch = placement.global_batch(train_cfg.batch_size)
    spq = int(data.codec.get("steps_per_quarter") or 4)
    np_arch = arch_obj.numpy()
    train_metres, val_metres = data.metres("train"), data.metres("val")
    steps_per_epoch = None
    if data.stream is not None:
        if arch_obj.name != "basic":
            raise OptionError(f"a streamed corpus (shards) trains the basic arch; --arch {arch_obj.name} needs a "
                              f"corpus folder (its inputs depend on each piece's metre)")
        xy_train = data.stream.train_dataset(tx, global_batch, train_cfg.seed, workers=placement.workers)
        steps_per_epoch = math.ceil(data.stream.chunks(tx) / global_batch)
        baselines = False  # n-gram baselines count the whole training set in memory
    else:
        xy_train = np_arch.training_arrays(train_p, train_metres, settings, vocab.size, spq, tx)
    xy_val = np_arch.training_arrays(val_p, val_metres, settings, vocab.size, spq, tx)
    run = RunState(out, {"corpus": data.source.get("sha256"), "model": dataclasses.asdict(model_cfg),
                         "arch": arch_config(arch_obj, settings), "train": dataclasses.asdict(train_cfg),
                         "tx": tx, "replicas": placement.replicas,
                         "from": None if from_model is None else str(from_model)}, is_chief=placement.is_chief)
    if run.restored_epoch:  # a killed run of this command: BackupAndRestore brings back weights and optimizer
        history = {k: list(v) for k, v in run.history.items()}
    dest = placement.write_path(out)

    k_arch = arch_obj.keras()
    export_weights, import_weights = k_arch.export_weights, k_arch.import_weights
    with placement.scope():
        model = k_arch.build_trainer(model_cfg, settings, vocab.size, seed=train_cfg.seed, spq=spq)
        if init_weights is not None:
            import_weights(model, model_cfg, init_weights)
    config = {"domain": "music", "model": dataclasses.asdict(model_cfg), "arch": arch_config(arch_obj, settings),
              "train": {**dataclasses.asdict(train_cfg), "tx": tx}, "codec": data.codec}
    if getattr(settings, "tune_classes", ()):  # what generation draws the tune classes from
        from app.music.archs.features import tune_prior

        config["arch"]["tune_prior"] = tune_prior(train_p, train_metres, settings.tune_classes, spq)
    t0 = time.perf_counter()
    prior_seconds = 0.0

    def checkpoint(epoch: int, logs: dict) -> None:
        for k, v in logs.items():
            history.setdefault(k, []).append(float(v))
        card = _card(out, data, model_cfg, train_cfg, tx, history, "training",
                     prior_seconds + time.perf_counter() - t0, parent=parent)
        card["arch"] = config["arch"]
        save_model_folder(dest, keras_model=model, weights=export_weights(model, model_cfg), vocab=vocab,
                          config=config, card=card)

    try:
        fit(model, xy_train, xy_val, train_cfg, log_dir=log_dir, initial_epoch=epochs_done, progress=progress,
            hooks=[EpochHook(checkpoint), *hooks], placement=placement, run_state=run,
            steps_per_epoch=steps_per_epoch,
            optimizer_from=optimizer_state.keras_model() if optimizer_state is not None else None)
    except KeyboardInterrupt:
        done = len(history.get("loss", []))
        print(f"\ninterrupted: {done} finished epoch(s) saved in {out}" +
              (f"; continue with --resume --out {out}" if done else ""), file=sys.stderr)
        raise
    seconds = time.perf_counter() - t0
    weights = export_weights(model, model_cfg)  # best epoch (early stopping restores it)

    stepper = np_arch.make_stepper(weights, model_cfg, settings, vocab.size,
                                   time_signature=tuple(data.codec.get("time_signature") or (4, 4)), spq=spq)
    metrics = {"validation": evaluate_pieces(stepper, val_p,
                                             metres=val_metres if arch_obj.metre_input else None)}
    add_tune_class_cost(metrics["validation"], config["arch"], settings, val_p, val_metres, spq)
    if baselines:
        from app.core.ngram import fit_baselines

        metrics["baselines"] = fit_baselines(train_p, val_p, vocab.size)
    card = _card(out, data, model_cfg, train_cfg, tx, history, "done", seconds, metrics, parent)
    card["arch"] = config["arch"]
    card.update(distribute=placement.card(), resumed_from_epoch=run.restored_epoch or epochs_done)
    save_model_folder(dest, keras_model=model, weights=weights, vocab=vocab, config=config, card=card)
    run.finish()
    placement.cleanup()
    return card


def _parent_arch(folder, arch: str | None, arch_settings: dict | None, where, what: str):
    """The arch of a model folder we resume or fine-tune; asking for another arch or settings is an error."""
    from app.music.archs.base import folder_arch

    parent, settings = folder_arch(folder.config)
    if arch is not None and arch != parent.name:
        raise ModelFolderError(f"cannot {what} {where} as --arch {arch}: it is a {parent.name!r} model, and the "
                               f"weights of one arch do not fit another; leave out --arch (keeps {parent.name}) "
                               f"or train a new {arch} model without --from/--resume")
    if arch_settings:
        asked = parent.make_settings({**dataclasses.asdict(settings), **arch_settings})
        if asked != settings:
            raise ModelFolderError(f"cannot {what} {where} with other {parent.name} settings ({arch_settings}); "
                                   f"the model was trained with {settings}")
    return parent, settings


# --- from a corpus folder ------------------------------------------------------------------------------------------
def load_music_data(corpus: str | Path) -> MusicData:
    """A corpus folder built by `python -m app music corpus` -> MusicData (pieces, vocabulary, grid metadata).

    A shard folder (`python -m app music shard`) gives a streamed MusicData: validation pieces in memory, the
    training pieces read from disk during training (`stream`)."""
    from app.music.shards import is_shard_folder

    if is_shard_folder(corpus):
        from app.music.shards import load_shards, manifest_vocab, shard_fingerprint

        stream, val, manifest = load_shards(corpus)
        return MusicData(train=[], val=val, vocab=manifest_vocab(manifest), codec=manifest["codec"],
                         source={"path": str(corpus), "sha256": shard_fingerprint(manifest),
                                 "built_from": manifest["source"], "augment": manifest["augment"]},
                         stream=stream)
    from app.music.corpus import load_corpus

    c = load_corpus(corpus)
    metas = list(c.train_meta) + list(c.val_meta)
    sigs = [tuple(m["time_signature"]) for m in metas] or [(4, 4)]
    qpms = [float(m["qpm"]) for m in metas] or [120.0]
    codec = {"min_pitch": c.codec.min_pitch, "max_pitch": c.codec.max_pitch,
             "steps_per_quarter": c.steps_per_quarter,
             "time_signature": list(max(set(sigs), key=sigs.count)),  # the most common one
             "qpm": float(np.median(qpms))}
    if c.config.mode != "melody":
        codec["mode"] = c.config.mode  # the model folder records it (config.json codec.mode); absent = melody
    if c.config.transpose == "C":
        codec["transpose"] = "C"  # every piece in C major / A minor: generating in another key transposes
    corpus_file = Path(corpus) / "corpus.npz" if Path(corpus).is_dir() else Path(corpus)
    from app.core.folder import file_sha256

    source = {"path": str(corpus), "sha256": file_sha256(corpus_file),
              "build_key": c.meta.get("build_key"), "sources": c.meta.get("config", {}).get("sources")
              or c.report.get("sources")}
    from app.music.archs.features import piece_metre

    return MusicData(train=c.train, val=c.val, vocab=c.vocab, codec=codec, source=source,
                     train_metres=[piece_metre(m) for m in c.train_meta],
                     val_metres=[piece_metre(m) for m in c.val_meta])


def evaluate_model(model: str | Path | None = None, corpus: str | Path | None = None, baselines: bool = True,
                   progress: bool = True) -> dict:
    """Held-out metrics of a model folder on a corpus's validation pieces, next to n-gram baselines on the same
    tokens (the corpus vocabulary is mapped onto the model's; unknown tokens are an error). corpus=None: the one
    recorded in the model's card, else the default corpus (built on first use)."""
    from app.music.corpus import corpus_for
    from app.music.generate import MelodyGenerator

    gen = MelodyGenerator.load(model)
    corpus = corpus_for(corpus, gen.card, progress=progress)
    data = load_music_data(corpus)
    idmap = map_vocab(data.vocab, gen.folder.vocab)
    train_p = data.train if idmap is None else [idmap[p] for p in data.train]
    val_p = data.val if idmap is None else [idmap[p] for p in data.val]
    if not val_p:
        raise DataError(f"corpus {corpus} has no validation pieces")
    from app.music.archs.base import folder_arch

    arch, settings = folder_arch(gen.folder.config)
    metres = data.metres("val") if arch.metre_input else None
    metrics = evaluate_pieces(gen.stepper, val_p, metres=metres)
    add_tune_class_cost(metrics, gen.folder.config.get("arch") or {}, settings, val_p, data.metres("val"),
                        gen.steps_per_quarter)
    report = {"model": str(gen.path), "corpus": str(corpus), "model_metrics": metrics}
    if baselines:
        from app.core.ngram import fit_baselines

        report["baselines"] = fit_baselines(train_p, val_p, gen.folder.vocab.size)
    return report
