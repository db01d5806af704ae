"""Name generation from a model folder: a batched numpy step loop (no TensorFlow), constraints, novelty report.

The loop has the shape of the course's inference model: start from <bos> and a zero state, run one step, sample a
character, feed it back, stop a row when it emits end-of-name. N names are sampled in one loop over a batch of N;
finished rows are dropped from the batch so the cost follows the live names only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.folder import ModelFolder, load_model_folder
from app.core.options import opt, validate
from app.core.paths import default_model
from app.core.metrics import novelty
from app.core.parallel import map_chunks
from app.core.sampling import SamplingOptions, sample_next
from app.errors import ModelFolderError, OptionError
from app.names.codec import BOS_ID, EOS_ID, PAD_ID, NameCodec, normalise

MAX_N = 1_000_000
MAX_LEN = 64


@dataclass(frozen=True)
class GenerateOptions:
    """What to generate. Lengths are in characters and include the prefix.

    suffix: names must end with it; contains: names must contain it (both by rejection sampling, at most
    `max_rounds` batches). unique: no name twice; novel_only: exclude names in the training data.
    """

    n: int = opt(10, "number of names", lo=1, hi=MAX_N, flag=("-n",), label="n (number of names)")
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    prefix: str = opt("", 'every name starts with this, e.g. "tyranno"')
    suffix: str = opt("", 'every name ends with this, e.g. "saurus"')
    contains: str = opt("", "every name contains this")
    min_len: int = opt(1, "minimum length in characters, prefix included", lo=1, hi=MAX_LEN)
    max_len: int = opt(30, "maximum length in characters, prefix included", lo=1, hi=MAX_LEN)
    unique: bool = opt(False, "no name twice")
    novel_only: bool = opt(False, "exclude names found in the training data")
    seed: int | None = opt(None, "same seed, same names", lo=0, hi=2**63 - 1)
    max_rounds: int = opt(200, "batches drawn at most to meet the constraints", lo=1, hi=100000, cli=False)

    def __post_init__(self) -> None:
        validate(self)
        if self.min_len > self.max_len:
            raise OptionError(f"min-len ({self.min_len}) is larger than max-len ({self.max_len})")
        for what, text in (("prefix", self.prefix), ("suffix", self.suffix)):
            if len(text) > self.max_len:
                raise OptionError(f"{what} {text!r} is longer than max-len ({self.max_len})")
        if len(self.prefix) >= self.max_len:
            raise OptionError(f"prefix {self.prefix!r} leaves no room under max-len ({self.max_len})")


@dataclass
class GenerateResult:
    names: list[str]
    report: dict  # makemore-style: samples, new, in_train, unique, plus rounds/drawn for constrained runs


class NameGenerator:
    """A loaded names model. `NameGenerator.load("models/dinos").generate(n=10, temperature=0.8)`."""

    def __init__(self, folder: ModelFolder):
        self.folder = folder
        self.codec = NameCodec(folder.vocab)
        self.stepper = folder.stepper()
        self.lowercase = bool(folder.config.get("codec", {}).get("lowercase", True))
        self.train_names = _read_list(folder.path / "names_train.txt")
        self.val_names = _read_list(folder.path / "names_val.txt")

    @classmethod
    def load(cls, path: str | Path | None = None) -> "NameGenerator":
        """Load a names model folder (default: the shipped models/dinos, see app.core.paths)."""
        return cls(load_model_folder(default_model("names") if path is None else path, domain="names"))

    # --- the loop -------------------------------------------------------------------------------------------
    def sample(self, batch: int, rng: np.random.Generator, sampling: SamplingOptions = SamplingOptions(),
               prefix: str = "", min_len: int = 1, max_len: int = 30) -> list[str]:
        """`batch` names; every name starts with `prefix`, has min_len..max_len chars.

        Large batches run as fixed-size chunks on all cores (app.core.parallel); same rng state, same names.
        """
        prefix = self._prepare(prefix, "prefix")
        return map_chunks(lambda size, r: self._sample_batch(size, r, sampling, prefix, min_len, max_len), batch, rng)

    def _sample_batch(self, batch: int, rng: np.random.Generator, sampling: SamplingOptions, prefix: str,
                      min_len: int, max_len: int) -> list[str]:
        """One batched step loop over `batch` rows (prefix already normalised and checked)."""
        st = self.stepper
        state = st.zero_state(batch)
        ids = np.full(batch, BOS_ID, np.int32)
        for ch in prefix:  # teacher-force the prefix; all rows share it
            _, state = st.step(ids, state)
            ids = np.full(batch, self.codec.vocab.id(ch), np.int32)
        V = self.codec.vocab.size
        base_allowed = np.ones(V, bool)
        base_allowed[[PAD_ID, BOS_ID]] = False  # never emitted inside a name
        only_eos = np.zeros(V, bool)
        only_eos[EOS_ID] = True
        no_eos = base_allowed.copy()
        no_eos[EOS_ID] = False
        out = np.full((batch, max_len), -1, np.int32)
        live = np.arange(batch)
        for pos in range(len(prefix), max_len + 1):
            logits, state = st.step(ids, state)
            allowed = only_eos if pos >= max_len else (no_eos if pos < min_len else base_allowed)
            nxt = sample_next(logits, rng, sampling, allowed)
            done = nxt == EOS_ID
            if pos < max_len:
                out[live[~done], pos] = nxt[~done]
            keep = ~done
            if not keep.any():
                break
            live, ids, state = live[keep], nxt[keep], st.select(state, keep)
        # one fixed-width unicode string per row: '' (a NUL code point) after the end is stripped by numpy
        if prefix:
            out[:, : len(prefix)] = self.codec.vocab.encode(prefix)
        table = np.array([t if i >= self.codec.vocab.n_special else "" for i, t in
                          enumerate(self.codec.vocab.tokens)] + [""], dtype="<U1")
        return table[out].view(f"<U{max_len}")[:, 0].tolist()

    def generate(self, n: int = 10, temperature: float = 1.0, **kwargs) -> list[str]:
        """Convenience: names only. Keyword options as in GenerateOptions (top_k/top_p/greedy go to sampling)."""
        return self.run(make_options(n=n, temperature=temperature, **kwargs)).names

    def run(self, opts: GenerateOptions) -> GenerateResult:
        """Sample until `opts.n` names pass the filters (suffix, contains, unique, novel), in batched rounds."""
        rng = np.random.default_rng(opts.seed)
        suffix = self._prepare(opts.suffix, "suffix")
        contains = self._prepare(opts.contains, "contains")
        train = set(self.train_names)
        kept: list[str] = []
        seen: set[str] = set()
        drawn = rounds = 0
        batch = max(16, opts.n)
        constrained = bool(suffix or contains or opts.unique or opts.novel_only)
        while len(kept) < opts.n:
            if rounds >= opts.max_rounds:
                raise OptionError(
                    f"found only {len(kept)} of {opts.n} names meeting the constraints in {drawn} samples "
                    f"(suffix={opts.suffix!r}, contains={opts.contains!r}, unique={opts.unique}, "
                    f"novel_only={opts.novel_only}); relax them, raise --temperature, or ask for fewer names")
            rounds += 1
            names = self.sample(batch if constrained else opts.n - len(kept), rng, opts.sampling, opts.prefix,
                                opts.min_len, opts.max_len)
            drawn += len(names)
            for name in names:
                if suffix and not name.endswith(suffix):
                    continue
                if contains and contains not in name:
                    continue
                if opts.unique and name in seen:
                    continue
                if opts.novel_only and name in train:
                    continue
                seen.add(name)
                kept.append(name)
                if len(kept) == opts.n:
                    break
        report = novelty(kept, train, set(self.val_names))
        report.update(drawn=drawn, rounds=rounds)
        return GenerateResult(kept, report)

    def _prepare(self, text: str, what: str) -> str:
        if not text:
            return ""
        norm = normalise(text, lowercase=self.lowercase)
        if not norm:
            raise OptionError(f"{what} {text!r} is empty after normalising")
        self.codec.check_text(norm, what)
        return norm


def make_options(n: int = 10, temperature: float = 1.0, **kwargs) -> GenerateOptions:
    """GenerateOptions from flat keywords: SamplingOptions fields (temperature, top_k, ...) go to `sampling`."""
    sampling_fields = {f.name for f in dataclasses.fields(SamplingOptions)}
    unknown = set(kwargs) - set(GenerateOptions.__dataclass_fields__) - sampling_fields - {"sampling"}
    if unknown:
        raise OptionError(f"unknown option(s) {', '.join(sorted(unknown))}")
    sampling = SamplingOptions(temperature=temperature, **{k: v for k, v in kwargs.items() if k in sampling_fields})
    return GenerateOptions(n=n, sampling=sampling, **{k: v for k, v in kwargs.items() if k not in sampling_fields})


def write_names(names: list[str], out_dir: str | Path) -> Path:
    """Write the names, one per line, to a new <out_dir>/<timestamp>.txt (never overwriting); returns its path."""
    from app.core.outputs import ensure_dir, timestamp, write_new

    return write_new(ensure_dir(out_dir), timestamp(), ".txt", "\n".join(names) + "\n")  # safe across processes


def _read_list(path: Path) -> list[str]:
    """A names list saved in a model folder (names_train.txt / names_val.txt); [] if absent."""
    if not path.is_file():
        return []
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ModelFolderError(f"{path} is not UTF-8 text (byte {exc.start}); the model folder is damaged, "
                               f"retrain it") from None
    except OSError as exc:
        raise ModelFolderError(f"{path} cannot be read ({exc.strerror})") from None


__all__ = ["NameGenerator", "GenerateOptions", "GenerateResult", "make_options", "write_names"]
