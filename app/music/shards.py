"""Streamed corpora: a corpus written as TFRecord shards, read back by `tf.data` with bounded memory.

Layout of a shard folder (written by `python -m app music shard`, atomically: a temporary sibling renamed):
    shards.json         manifest: format, vocabulary, grid metadata (codec), source corpus, transpositions, and
                        per shard its file, pieces and tokens;
    train-NNNNN.tfrecord  one record per training piece: its token ids as little-endian int16 bytes;
    index.npz           per shard the piece lengths (int32) so the step count of an epoch is known for any tx;
    val.npz             the validation pieces (tokens int16 + offsets), small enough to stay in memory.
Training pieces may be augmented by transposition (every shift in -K..+K semitones whose notes stay inside the
vocabulary), so the shards can hold many times the source corpus's tokens.

Reading (`train_dataset`): file names -> shuffle -> interleave(TFRecordDataset) -> piece -> chunks of tx steps
(the layout of app.music.train.sequence_chunks) -> shuffle buffer -> global batches with per-token weights ->
prefetch. Memory is bounded by the shuffle buffer and the prefetch depth, not by the corpus size. Under
multi-worker training each worker reads its own files (tf.data auto-shard policy FILE), so a worker's batch is
the per-token mean over its own batch and workers are averaged (exactly the global per-token mean when the
workers' batches hold the same number of real tokens; the in-memory path is always exact).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.vocab import Vocabulary
from app.errors import DataError, ModelFolderError, OptionError

SHARDS_FILE = "shards.json"
FORMAT = "melody-shards-1"
NOTE_BASE = 2  # ids >= 2 are note-ons (app.music.codec: 0 hold, 1 rest)


def transpose_ids(ids: np.ndarray, shift: int, vocab_size: int) -> np.ndarray | None:
    """Shift every note-on id by `shift` semitones; None when a note would leave the vocabulary."""
    ids = np.asarray(ids, np.int32)
    if shift == 0:
        return ids
    notes = ids >= NOTE_BASE
    if notes.any():
        lo, hi = int(ids[notes].min()) + shift, int(ids[notes].max()) + shift
        if lo < NOTE_BASE or hi >= vocab_size:
            return None
    out = ids.copy()
    out[notes] += shift
    return out


@dataclass
class ShardSet:
    """A loaded shard folder's manifest (the training pieces stay on disk)."""

    path: Path
    manifest: dict
    lengths: list[np.ndarray] = field(repr=False)  # per shard, the piece lengths

    @property
    def files(self) -> list[str]:
        return [str(self.path / s["file"]) for s in self.manifest["shards"]]

    @property
    def train_pieces(self) -> int:
        return int(sum(len(l) for l in self.lengths))

    @property
    def train_tokens(self) -> int:
        return int(sum(int(l.sum()) for l in self.lengths))

    def chunks(self, tx: int) -> int:
        """Training chunks of `tx` steps in one epoch (sum over pieces of ceil(length / tx))."""
        return int(sum(int(np.ceil(l / tx).sum()) for l in self.lengths))

    def train_dataset(self, tx: int, global_batch: int, seed: int, shuffle_buffer: int = 4096,
                      workers: int = 1):
        """The streamed training dataset of global batches (X, Y, W), each (global_batch, tx); see the module
        docstring. `workers`: how many workers will read it (each needs at least one file)."""
        import tensorflow as tf

        from app.core.train import per_token_weights

        files = self.files
        if workers > len(files):
            raise OptionError(f"{self.path} has {len(files)} shard file(s) for {workers} workers; every worker "
                              f"reads whole files: rewrite it with `python -m app music shard --shards "
                              f"{workers * 4}` or more")

        def chunk(record):
            ids = tf.cast(tf.io.decode_raw(record, tf.int16, little_endian=True), tf.int32)
            n = tf.shape(ids)[0]
            x = tf.concat([[-1], ids[:-1]], 0)
            pad = (tx - n % tx) % tx
            xs = tf.reshape(tf.pad(x, [[0, pad]]), [-1, tx])
            ys = tf.reshape(tf.pad(ids, [[0, pad]]), [-1, tx])
            ws = tf.reshape(tf.pad(tf.ones([n], tf.float32), [[0, pad]]), [-1, tx])
            return tf.data.Dataset.from_tensor_slices((xs, ys, ws))

        ds = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.flat_map(chunk).shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(global_batch).map(per_token_weights, num_parallel_calls=tf.data.AUTOTUNE)
        if workers == 1:  # the epoch's length is known (Keras then needs no first pass to find it)
            ds = ds.apply(tf.data.experimental.assert_cardinality(math.ceil(self.chunks(tx) / global_batch)))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
        return ds.with_options(options).prefetch(2)


def is_shard_folder(path: str | Path) -> bool:
    return (Path(path) / SHARDS_FILE).is_file()


def load_shards(path: str | Path) -> tuple[ShardSet, list[np.ndarray], dict]:
    """A shard folder -> (ShardSet, validation pieces, manifest)."""
    p = Path(path)
    try:
        manifest = json.loads((p / SHARDS_FILE).read_text(encoding="utf-8"))
        with np.load(p / "index.npz") as z:
            lengths = [z[f"shard_{i}"] for i in range(len(manifest["shards"]))]
        with np.load(p / "val.npz") as z:
            tokens, offsets = z["tokens"].astype(np.int32), z["offsets"]
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{p}: not a readable shard folder ({type(exc).__name__}: {exc}); write it again "
                               f"with `python -m app music shard --out {p}`") from None
    if manifest.get("format") != FORMAT:
        raise ModelFolderError(f"{p}: shard format {manifest.get('format')!r}, this version reads {FORMAT!r}; "
                               f"write it again with `python -m app music shard`")
    missing = [s["file"] for s in manifest["shards"] if not (p / s["file"]).is_file()]
    if missing:
        raise ModelFolderError(f"{p}: shard file(s) missing: {', '.join(missing[:5])}; copy the whole folder")
    val = [tokens[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    return ShardSet(p, manifest, lengths), val, manifest


def write_shards(corpus: str | Path, out: str | Path, shards: int = 16, augment: int = 0, seed: int = 0) -> dict:
    """Write the corpus at `corpus` (a folder of `python -m app music corpus`) as a shard folder at `out`.

    Training pieces are written once per shift in -augment..+augment (shifts that leave the vocabulary are
    skipped), spread round-robin over `shards` files in a seeded random order. Returns the manifest.
    """
    check_shard_options(shards, augment)
    from app.music.train import load_music_data

    return write_pieces(load_music_data(corpus), out, shards, augment, seed)


def check_shard_options(shards: int, augment: int) -> None:
    if not 1 <= shards <= 10000:
        raise OptionError(f"--shards must be 1..10000, got {shards}")
    if not 0 <= augment <= 24:
        raise OptionError(f"--augment must be 0..24 semitones, got {augment}")


def write_pieces(data, out: str | Path, shards: int = 16, augment: int = 0, seed: int = 0) -> dict:
    """Write a `MusicData` (in-memory pieces, vocabulary, codec, source) as a shard folder; see write_shards."""
    check_shard_options(shards, augment)
    import tensorflow as tf

    if data.vocab.size > 32767:
        raise DataError(f"vocabulary of {data.vocab.size} tokens does not fit int16 records")
    out = Path(out)
    if out.exists() and not is_shard_folder(out):
        raise OptionError(f"{out} exists and is not a shard folder; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        names = [f"train-{i:05d}.tfrecord" for i in range(shards)]
        writers = [tf.io.TFRecordWriter(str(tmp / n)) for n in names]
        lengths: list[list[int]] = [[] for _ in range(shards)]
        rng = np.random.default_rng(seed)
        k = 0
        skipped = 0
        for shift in range(-augment, augment + 1):
            for i in rng.permutation(len(data.train)):
                ids = transpose_ids(data.train[i], shift, data.vocab.size)
                if ids is None:
                    skipped += 1
                    continue
                writers[k % shards].write(ids.astype("<i2").tobytes())
                lengths[k % shards].append(len(ids))
                k += 1
        for w in writers:
            w.close()
        np.savez(tmp / "index.npz", **{f"shard_{i}": np.asarray(l, np.int32) for i, l in enumerate(lengths)})
        val_tokens = np.concatenate(data.val).astype(np.int16) if data.val else np.zeros(0, np.int16)
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in data.val])]).astype(np.int64)
        np.savez(tmp / "val.npz", tokens=val_tokens, offsets=offsets)
        manifest = {
            "format": FORMAT, "vocab": data.vocab.to_json(), "codec": data.codec, "source": data.source,
            "augment": augment, "seed": seed, "skipped_transpositions": skipped,
            "train_pieces": k, "train_tokens": int(sum(sum(l) for l in lengths)),
            "val_pieces": len(data.val), "val_tokens": int(val_tokens.size),
            "shards": [{"file": n, "pieces": len(l), "tokens": int(sum(l))} for n, l in zip(names, lengths)],
        }
        (tmp / SHARDS_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        tmp.chmod(0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def manifest_vocab(manifest: dict) -> Vocabulary:
    return Vocabulary.from_json(manifest["vocab"])


def shard_fingerprint(manifest: dict) -> str:
    """A hash of the manifest (files, counts, source corpus hash, transpositions): the card's corpus identity."""
    import hashlib

    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def summary(manifest: dict, out: str | Path) -> str:
    return (f"shards {out}: {len(manifest['shards'])} files, {manifest['train_pieces']:,} training pieces / "
            f"{manifest['train_tokens']:,} tokens (transposed -{manifest['augment']}..+{manifest['augment']}; "
            f"{manifest['skipped_transpositions']:,} out-of-range copies skipped), validation "
            f"{manifest['val_pieces']} pieces / {manifest['val_tokens']:,} tokens")

