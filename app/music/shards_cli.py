"""`python -m app music shard`: write a corpus as TFRecord shards for streamed training (see app.music.shards)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("shard", help="write a corpus as TFRecord shards (streamed training, bounded memory)",
                       description="Write the training pieces of a corpus (optionally transposed by -K..+K "
                                   "semitones) into TFRecord shards that `music train --corpus SHARDS` streams "
                                   "with tf.data, so a corpus larger than RAM trains with bounded memory.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", default="data/corpora/default", help="corpus folder built by `music corpus`")
    p.add_argument("--out", required=True, help="shard folder to write, e.g. data/corpora/default-shards")
    p.add_argument("--shards", type=int, default=16, help="number of shard files (>= 4 x workers is good)")
    p.add_argument("--augment", type=int, default=0, metavar="K",
                   help="also write each training piece transposed by -K..+K semitones")
    p.add_argument("--seed", type=int, default=0, help="seed of the piece order")
    p.set_defaults(func=run)


def run(args) -> int:
    from app.music.shards import summary, write_shards

    manifest = write_shards(args.corpus, args.out, shards=args.shards, augment=args.augment, seed=args.seed)
    print(summary(manifest, args.out))
    return 0
