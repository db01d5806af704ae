"""`python -m app reference {dinos,minchar,addition,count}`: the seed documents' numpy RNNs as small demos.

Each demo trains from scratch, prints its progress as the document does, and ends with a held-out figure; `count`
also writes the cost-surface plot with the Rprop path. numpy/matplotlib are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.core.config import check_range
from app.errors import DataError

DEFAULT_DATA = "data/dinos.txt"
DEFAULT_OUT = "outputs/reference"


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="reference_command", metavar="SUBCOMMAND")
    sub.required = True

    d = sub.add_parser("dinos", help="the course's dinosaur-name RNN (vanilla RNN, SGD, one name per step)")
    d.add_argument("--data", default=DEFAULT_DATA, help=f"names file (default {DEFAULT_DATA})")
    d.add_argument("--iterations", type=int, default=35000, help="names seen, one SGD step each (default 35000)")
    d.add_argument("--every", type=int, default=2000, help="print loss and samples every N iterations")
    d.add_argument("--samples", type=int, default=7, help="names sampled at each print (default 7)")
    d.add_argument("--val-fraction", type=float, default=0.1, help="held-out share, same split as `names train`")
    d.add_argument("--split-seed", type=int, default=0, help="train/held-out split seed (default 0, as `names "
                   "train`)")
    d.add_argument("--seed", type=int, default=0, help="shuffle seed; seed + 1 initialises (course: 0)")
    d.set_defaults(func=cmd_dinos)

    m = sub.add_parser("minchar", help="min-char-rnn on any UTF-8 text file (Adagrad, sequence chunks)")
    m.add_argument("text", help="UTF-8 text file; its last --val-fraction is held out")
    m.add_argument("--iterations", type=int, default=5000, help="chunks trained on (default 5000)")
    m.add_argument("--hidden", type=int, default=100, help="hidden units (default 100)")
    m.add_argument("--seq-length", type=int, default=25, help="characters per chunk (default 25)")
    m.add_argument("--lr", type=float, default=0.1, help="Adagrad learning rate (default 0.1)")
    m.add_argument("--every", type=int, default=1000, help="print loss and a sample every N iterations")
    m.add_argument("--val-fraction", type=float, default=0.1, help="share of the file held out (default 0.1)")
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=cmd_minchar)

    a = sub.add_parser("addition", help="8-bit binary addition learnt by a recurrent hidden layer (BPTT)")
    a.add_argument("--iterations", type=int, default=10000, help="random pairs trained on (default 10000)")
    a.add_argument("--every", type=int, default=1000, help="print progress every N iterations")
    a.add_argument("--heldout", type=int, default=1000, help="pairs never trained on, tested at the end")
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=cmd_addition)

    c = sub.add_parser("count", help="linear RNN counting ones, Rprop; writes the cost-surface plot")
    c.add_argument("--iterations", type=int, default=500, help="Rprop iterations (default 500)")
    c.add_argument("--samples", type=int, default=20, help="training sequences (default 20)")
    c.add_argument("--length", type=int, default=10, help="bits per sequence (default 10)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out-dir", default=DEFAULT_OUT, help=f"where the .png goes (default {DEFAULT_OUT})")
    c.set_defaults(func=cmd_count)


def cmd_dinos(args) -> int:
    import numpy as np

    from app.names.codec import read_names, split_names
    from app.reference import dinos_rnn

    check_range("--iterations", args.iterations, 0, None)
    check_range("--every", args.every, 1, None)
    check_range("--samples", args.samples, 0, 1000)
    check_range("--val-fraction", args.val_fraction, 0.0, 0.9, lo_open=True)
    train, val = split_names(read_names(args.data), args.val_fraction, args.split_seed)
    print(f"{len(train)} training names, {len(val)} held out ({args.data})")

    def log(j, loss, model):
        print(f"Iteration: {j}, Loss: {loss:.6f}")
        rng = np.random.default_rng(args.seed + j)
        for _ in range(args.samples):
            print("  " + dinos_rnn.sample_name(model, rng).capitalize())
        sys.stdout.flush()

    model = dinos_rnn.train_course_rnn(train, args.iterations, seed=args.seed, log=log, log_every=args.every)
    print(f"held-out: {dinos_rnn.heldout_nats_per_char(model, val):.4f} nats/char over {len(val)} names "
          f"(train: {dinos_rnn.heldout_nats_per_char(model, train):.4f})")
    return 0


def read_text(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"text file {path!r} does not exist or is not a file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"text file {path!r} is not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise DataError(f"cannot read {path!r}: {exc.strerror}") from None


def cmd_minchar(args) -> int:
    import numpy as np

    from app.reference import minchar

    for name, lo in (("iterations", 0), ("hidden", 1), ("seq_length", 1), ("every", 1)):
        check_range("--" + name.replace("_", "-"), getattr(args, name), lo, None)
    check_range("--lr", args.lr, 0.0, None, lo_open=True)
    check_range("--val-fraction", args.val_fraction, 0.0, 0.9, lo_open=True)
    text = read_text(args.text)
    cut = len(text) - max(2, int(len(text) * args.val_fraction))
    train, val = text[:cut], text[cut:]
    print(f"{len(text)} characters, {len(set(train))} unique; {len(val)} held out at the end")

    def log(n, loss, model):
        rng = np.random.default_rng(args.seed + n)
        ids = minchar.sample_ids(model.params, np.zeros(args.hidden), model.ids(train[0])[0], 200, rng)
        print(f"----\n{train[0]}{''.join(model.chars[i] for i in ids)}\n----\niter {n}, loss: {loss:.6f}")
        sys.stdout.flush()

    model = minchar.train(train, args.iterations, hidden_size=args.hidden, seq_length=args.seq_length,
                          learning_rate=args.lr, seed=args.seed, log=log, log_every=args.every)
    seen = set(model.chars)
    if not set(val) <= seen:
        print(f"held-out part has characters never trained on ({''.join(sorted(set(val) - seen))!r}); "
              f"scored on its known-character stretch only", file=sys.stderr)
        val = val[:min(val.index(ch) for ch in set(val) - seen)]
    if len(val) >= 2:
        print(f"held-out: {minchar.nats_per_char(model, val):.4f} nats/char over {len(val) - 1} characters")
    return 0


def cmd_addition(args) -> int:
    from app.reference import addition

    check_range("--iterations", args.iterations, 0, None)
    check_range("--every", args.every, 1, None)
    check_range("--heldout", args.heldout, 1, 8192)
    held = addition.heldout_pairs(args.heldout, args.seed + 1)

    def log(j, err, a, b, pred):
        bits = lambda n: "".join(str(v) for v in addition.to_bits([n])[0][::-1])  # noqa: E731 (MSB first)
        print(f"Iteration {j}  Error: {err:.4f}\nPred: {bits(pred)}\nTrue: {bits(a + b)}\n{a} + {b} = {pred}\n"
              f"------------")
        sys.stdout.flush()

    model = addition.train(args.iterations, seed=args.seed, exclude=set(held), log=log, log_every=args.every)
    print(f"held-out: {addition.accuracy(model.params, held):.1%} of {len(held)} never-seen pairs added exactly")
    return 0


def cmd_count(args) -> int:
    import numpy as np

    from app.core.outputs import OutputSet, ensure_dir, timestamp
    from app.reference import count_ones

    check_range("--iterations", args.iterations, 1, 100000)
    check_range("--samples", args.samples, 1, 100000)
    check_range("--length", args.length, 1, 1000)
    X, t = count_ones.make_dataset(np.random.default_rng(args.seed), args.samples, args.length)
    loss, grad = count_ones.loss_and_gradient(X, t, 1.2, 1.2)
    num = count_ones.numerical_gradient(X, t, 1.2, 1.2)
    ok = np.allclose(grad, num, rtol=1e-6)
    print(f"gradient check at (w_x, w_rec) = (1.2, 1.2): backprop {grad.round(6)}, numerical {num.round(6)}: "
          f"{'no gradient errors found' if ok else 'MISMATCH'}")
    path = count_ones.rprop(X, t, iterations=args.iterations)
    for i in sorted(set(range(0, len(path), max(1, args.iterations // 10))) | {len(path) - 1}):
        w = path[i]
        print(f"iteration {i:4d}: w_x = {w[0]: .6f}, w_rec = {w[1]: .6f}, "
              f"cost = {count_ones.cost(count_ones.forward_states(X, *w)[:, -1], t):.6g}")
    test = np.array([[0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1]], dtype=np.float64)
    out_y = count_ones.forward_states(test, *path[-1])[0, -1]
    print(f"Target output: {int(test.sum())} vs Model output: {out_y:.2f}")
    folder = ensure_dir(args.out_dir)
    out = OutputSet.reserve(folder, f"count-ones-rprop-{timestamp()}", (".png",))
    try:
        count_ones.plot_rprop_path(X, t, path, out.temp(".png"))
        out.publish()
    finally:
        out.discard()
    png = out.path(".png")
    print(f"wrote {png}")
    return 0 if ok else 1
