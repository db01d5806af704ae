"""The course's dinosaur-name RNN (seed 002, "Dinosaurus Island"): the "course baseline" of bench/names.py.

A character-level vanilla RNN in the course's notation. Characters index a 27-symbol vocabulary ('\\n' = 0, then
the letters; here: '\\n' then the sorted characters of the training names). For one name, X = [None, c_1, …, c_n]
and Y = [c_1, …, c_n, '\\n']; x⟨1⟩ = 0 (None), x⟨t⟩ = onehot(X[t]) (n_x = 27), a⟨t⟩ (n_a = 50, 1):

    a⟨t⟩ = tanh(W_ax · x⟨t⟩ + W_aa · a⟨t-1⟩ + b)
    ŷ⟨t⟩ = softmax(W_ya · a⟨t⟩ + b_y)
    L    = Σ_t −log ŷ⟨t⟩[Y[t]]                                    (nats per name, '\\n' included)

Gradient (rnn_backward), with da_next = 0 after the last character:

    dy⟨t⟩ = ŷ⟨t⟩ − onehot(Y[t]);   dW_ya += dy⟨t⟩ a⟨t⟩ᵀ,  db_y += dy⟨t⟩
    da     = W_yaᵀ dy⟨t⟩ + da_next;   daraw = (1 − a⟨t⟩²) ∗ da
    db += daraw,  dW_ax += daraw x⟨t⟩ᵀ,  dW_aa += daraw a⟨t-1⟩ᵀ,  da_next = W_aaᵀ daraw

each gradient clipped element-wise to [−5, 5], then plain SGD: θ −= 0.01 · dθ. This is min-char-rnn's math
(`app.reference.minchar.loss_and_grads`, with W_ax ≡ W_xh, W_aa ≡ W_hh, W_ya ≡ W_hy, b ≡ b_h), so it is not
written twice.

Training as in the course: one name per iteration over the list shuffled with np.random.seed(0), a⟨0⟩ of each
name = the last a of the previous name (carried, starting at 0), parameters ~ randn · 0.01 after
np.random.seed(1), biases 0. The printed loss is smoothed: loss = 0.999 · loss + 0.001 · L, starting at
−log(1/27) · 7 = 23.071 (7 = "dino_names"; the course prints 23.087, the value after the first step). Here
`seed` gives the shuffle seed and `seed + 1` the initialisation seed (legacy RandomState, so seed=0 reproduces the
course's random streams exactly; the names themselves are ours, so the numbers differ from the course's).

Sampling draws one random choice per step from ŷ⟨t⟩, starting from x = 0 and a = 0, until '\\n' or 50 characters.
Held-out nats/char starts each name from x = 0, a = 0 and averages −log ŷ over its characters and its '\\n'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from app.errors import DataError, OptionError
from app.reference import minchar

EOS = "\n"
COURSE_NAMES = {"Wax": "Wxh", "Waa": "Whh", "Wya": "Why", "b": "bh", "by": "by"}  # course name -> minchar name
DINO_NAMES = 7  # the course's get_initial_loss(vocab_size, dino_names)
MAX_SAMPLE_CHARS = 50


def initial_loss(vocab_size: int, dino_names: int = DINO_NAMES) -> float:
    """The course's starting value of the smoothed loss: −log(1/vocab_size) · dino_names (23.071 for 27)."""
    return -math.log(1.0 / vocab_size) * dino_names


@dataclass
class CourseRNN:
    """Parameters (course names: Wax, Waa, Wya, b, by; vectors as 1-D arrays), the characters (index 0 = '\\n'),
    and the training history: (iteration, smoothed loss) pairs."""

    params: dict
    chars: tuple[str, ...]
    history: list[tuple[int, float]] = field(default_factory=list)

    @property
    def n_a(self) -> int:
        return self.params["Waa"].shape[0]

    def minchar_params(self) -> dict:
        return {m: self.params[c] for c, m in COURSE_NAMES.items()}

    def xy(self, name: str) -> tuple[list[int | None], list[int]]:
        """The course's X = [None] + ids(name), Y = ids(name) + [id('\\n')]."""
        index = {ch: i for i, ch in enumerate(self.chars)}
        unknown = sorted(set(name) - set(index))
        if unknown:
            raise DataError(f"name {name!r} has character(s) {', '.join(map(repr, unknown))} not in the "
                            f"course RNN's training names")
        ids = [index[ch] for ch in name]
        return [None] + ids, ids + [index[EOS]]


def char_table(names: Sequence[str]) -> tuple[str, ...]:
    """'\\n' first, then the names' characters sorted (a–z gives the course's 27-symbol table)."""
    chars = sorted(set("".join(names)))
    if EOS in chars:
        raise DataError("names must not contain a newline")
    return (EOS, *chars)


def train_course_rnn(train_names: Sequence[str], iterations: int = 35000, *, seed: int = 0, n_a: int = 50,
                     learning_rate: float = 0.01, log: Callable[[int, float, CourseRNN], None] | None = None,
                     log_every: int = 2000) -> CourseRNN:
    """Train the course's model on `train_names` for `iterations` single-name SGD steps; see the module docstring.

    history gets (j, smoothed loss) every `log_every` iterations and after the last; `log(j, loss, model)` too.
    """
    names = [n for n in train_names]
    if not names or any(not n for n in names):
        raise DataError("train_course_rnn needs a non-empty list of non-empty names")
    if iterations < 0 or n_a < 1 or not learning_rate > 0 or log_every < 1:
        raise OptionError("iterations >= 0, n_a >= 1, learning_rate > 0 and log_every >= 1 are required")
    chars = char_table(names)
    init = np.random.RandomState(seed + 1)  # the course: np.random.seed(1); randn(...) * 0.01 in this order
    vocab = len(chars)
    params = {"Wax": init.randn(n_a, vocab) * 0.01, "Waa": init.randn(n_a, n_a) * 0.01,
              "Wya": init.randn(vocab, n_a) * 0.01, "b": np.zeros(n_a), "by": np.zeros(vocab)}
    model = CourseRNN(params, chars)
    np.random.RandomState(seed).shuffle(names)  # the course: np.random.seed(0); np.random.shuffle(examples)
    examples = [model.xy(n) for n in names]
    p = model.minchar_params()  # same arrays, min-char-rnn's names: updates below change model.params too
    loss = initial_loss(vocab)
    a_prev = np.zeros(n_a)
    for j in range(iterations):
        X, Y = examples[j % len(examples)]
        cur, grads, a_prev = minchar.loss_and_grads(p, X, Y, a_prev, clip=minchar.CLIP)
        for k, g in grads.items():
            p[k] -= learning_rate * g
        loss = 0.999 * loss + 0.001 * cur
        if j % log_every == 0 or j == iterations - 1:
            model.history.append((j, loss))
            if log is not None:
                log(j, loss, model)
    return model


def heldout_nats_per_char(model: CourseRNN, names: Sequence[str]) -> float:
    """Mean −log ŷ per character over `names`, each read from x = 0, a = 0, its '\\n' counted as a character."""
    total, count = 0.0, 0
    p, a0 = model.minchar_params(), np.zeros(model.n_a)
    for name in names:
        X, Y = model.xy(name)
        total += minchar.sequence_loss(p, X, Y, a0)[0]
        count += len(Y)
    if count == 0:
        raise DataError("no names to evaluate")
    return total / count


def sample_name(model: CourseRNN, rng: np.random.Generator, max_chars: int = MAX_SAMPLE_CHARS) -> str:
    """One name: x = 0, a = 0, then a random choice per step from ŷ until '\\n' or max_chars characters."""
    ids = minchar.sample_ids(model.minchar_params(), np.zeros(model.n_a), None, max_chars, rng, stop_ix=0)
    return "".join(model.chars[i] for i in ids if i != 0)
