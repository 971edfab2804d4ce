"""Comment text to sparse tf-idf features: words, word pairs, character n-grams, question kind.

Pure Python, numpy and scipy. The featurizer is fitted once (vocabulary and idf, pruned by
document frequency) and then turns any batch of comments, or a single one, into a CSR matrix
whose columns are laid out block after block (see ``BLOCKS``).

numpy and SciPy are imported by the functions that compute, not with the module: the web
app and the ``engage`` command import this package without paying for them. Reading
comments (``transform``) needs numpy alone: its rows are :class:`Rows`, not a SciPy
matrix, because importing ``scipy.sparse`` takes longer than reading a comment and
``engage feedback classify`` must start at once. Fitting builds SciPy matrices.
"""

from __future__ import annotations

import array
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import scipy.sparse as sp

QUESTION_KINDS = ("nonspecific", "what_good", "could_improve")

#: Feature blocks, in column order. Each is normalised on its own, then weighted.
BLOCKS = ("word", "char", "question")

# The questions seen in the NHS England framework data, as pxtextmining groups them.
_KNOWN_QUESTIONS = {
    "fft why?": "nonspecific",
    "please tell us why": "nonspecific",
    "please tell us why?": "nonspecific",
    "please describe any things about the 111 service that you were particularly "
    "satisfied and/or dissatisfied with": "nonspecific",
    "what was good?": "what_good",
    "how could we improve?": "could_improve",
    "what could we do better?": "could_improve",
    "is there anything we could have done better?": "could_improve",
}
# "would like" ("Is there anything else you would like to tell us?") is not praise.
_GOOD_WORDS = re.compile(r"\b(?:good|best|(?<!would )(?<!'d )liked?)\b")
_IMPROVE_WORDS = re.compile(r"\b(?:improve\w*|better|chang\w*)\b")


def _normalise_question(question: str) -> str:
    return " ".join(question.casefold().split())


def question_kind(question: str | None) -> str:
    """The kind of question a comment answers: "nonspecific", "what_good" or "could_improve".

    Known questions are looked up; others are guessed from keywords (good/best/like ->
    what_good, improve/better/change -> could_improve). A question with both kinds of
    keyword, none, or no question at all is nonspecific.
    """
    if question is None:
        return "nonspecific"
    q = _normalise_question(question)
    known = _KNOWN_QUESTIONS.get(q)
    if known is not None:
        return known
    good = _GOOD_WORDS.search(q) is not None
    improve = _IMPROVE_WORDS.search(q) is not None
    if good and not improve:
        return "what_good"
    if improve and not good:
        return "could_improve"
    return "nonspecific"


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+")


def tokens(text: str) -> list[str]:
    """Lower-cased words without accents or apostrophes ("didn't" -> "didnt"); a number
    becomes zeros (one per digit, at most four), so "4 hours" and "5 hours" share a feature."""
    if not text.isascii():
        # Accents and Arabic short vowels are often left out in typed comments: drop them
        # all, so "información" and "informacion" are one word.
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        text = unicodedata.normalize("NFKC", text)
    text = text.translate(_APOSTROPHES).casefold()
    out = []
    for tok in _TOKEN.findall(text):
        if tok[0].isdigit():
            out.append("0" * min(len(tok), 4))
        else:
            out.append(tok.replace("'", ""))
    return out


@dataclass(frozen=True)
class FeatureParams:
    """How comments become features; stored in the model's manifest."""

    #: Character n-grams of each word padded with a space on both sides, of these lengths.
    char_min: int = 2
    char_max: int = 5
    #: A term is kept when at least this many training comments contain it.
    min_df_word: int = 2
    min_df_char: int = 3
    min_df_question: int = 2
    #: Answers of at most this many words also get (question kind, word) features, so that
    #: "nothing" under "What was good?" and under "What could we do better?" differ.
    short_answer: int = 4
    #: Weight of each block after it is L2-normalised.
    word_weight: float = 1.0
    char_weight: float = 1.0
    question_weight: float = 0.6

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float | int]) -> FeatureParams:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown feature parameters: {sorted(unknown)}")
        return cls(**known)  # type: ignore[arg-type]


def _doc_terms(
    toks: list[str], kind: str, params: FeatureParams, char_cache: dict[str, list[str]]
) -> tuple[list[str], list[str], list[str]]:
    words = toks + [a + " " + b for a, b in zip(toks, toks[1:], strict=False)]
    chars: list[str] = []
    for tok in toks:
        grams = char_cache.get(tok)
        if grams is None:
            padded = " " + tok + " "
            grams = [
                padded[i : i + n]
                for n in range(params.char_min, params.char_max + 1)
                for i in range(len(padded) - n + 1)
            ]
            char_cache[tok] = grams
        chars.extend(grams)
    question = ["@" + kind]
    if len(toks) <= params.short_answer:
        question.extend([kind + "|" + tok for tok in toks] or [kind + "|"])
    return words, chars, question


#: Rows weighed at a time (``Featurizer._weigh``).
@dataclass
class Rows:
    """Sparse rows in SciPy's CSR layout (``data``, ``indices``, ``indptr``), with numpy
    alone: what :meth:`Featurizer.transform` gives and a model multiplies."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def counted(cls, columns: np.ndarray, indptr: np.ndarray, n_columns: int) -> Rows:
        """Each row's columns (repeats allowed) as counts, columns sorted within each row:
        SciPy's ``csr_matrix((ones, columns, indptr)).sum_duplicates()``."""
        import numpy as np

        n_rows = len(indptr) - 1
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
        keys, counts = np.unique(rows * n_columns + columns, return_counts=True)
        new_indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // n_columns, minlength=n_rows), out=new_indptr[1:])
        return cls(counts.astype(np.float32), (keys % n_columns).astype(np.int32),
                   new_indptr, (n_rows, n_columns))

    def __matmul__(self, dense: np.ndarray) -> np.ndarray:
        """The product with a dense matrix: each row's entries times the rows of ``dense``
        their columns pick (a few hundred per comment)."""
        import numpy as np

        out = np.zeros((self.shape[0], dense.shape[1]), dtype=np.result_type(self.data, dense))
        bounds = self.indptr.tolist()
        for row, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
            if start != end:
                out[row] = self.data[start:end] @ dense[self.indices[start:end]]
        return out


_Sparse = TypeVar("_Sparse", "sp.csr_matrix", Rows)


_WEIGH_ROWS = 4096


class Featurizer:
    """A fitted vocabulary with idf weights; ``transform`` gives L2-normalised tf-idf rows."""

    def __init__(self, params: FeatureParams, vocab: Sequence[Sequence[str]], idf: np.ndarray):
        import numpy as np

        if len(vocab) != len(BLOCKS):
            raise ValueError(f"expected {len(BLOCKS)} vocabulary blocks, got {len(vocab)}")
        self.params = params
        self.block_terms: list[list[str]] = [list(block) for block in vocab]
        self.block_sizes = [len(block) for block in self.block_terms]
        self.offsets = np.cumsum([0, *self.block_sizes]).astype(np.int64)
        self.n_features = int(self.offsets[-1])
        if idf.shape != (self.n_features,):
            raise ValueError(f"idf has shape {idf.shape}, expected ({self.n_features},)")
        self.idf = np.asarray(idf, dtype=np.float32)
        self._index: list[dict[str, int]] = [
            {term: int(off) + i for i, term in enumerate(block)}
            for off, block in zip(self.offsets, self.block_terms, strict=False)
        ]
        if any(len(ix) != n for ix, n in zip(self._index, self.block_sizes, strict=True)):
            raise ValueError("duplicate terms in the vocabulary")
        self._block_weight = np.array(
            [params.word_weight, params.char_weight, params.question_weight], dtype=np.float32
        )
        # word -> column ids of its character n-grams; words repeat, so this pays for itself.
        self._char_ids: dict[str, list[int]] = {}

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        kinds: Sequence[str],
        params: FeatureParams,
        weights: Sequence[float] | np.ndarray | None = None,
    ) -> Featurizer:
        """Learn the vocabulary and idf. A comment of weight w counts as w comments."""
        return cls.fit_transform(texts, kinds, params, weights)[0]

    @classmethod
    def fit_transform(
        cls,
        texts: Sequence[str],
        kinds: Sequence[str],
        params: FeatureParams,
        weights: Sequence[float] | np.ndarray | None = None,
    ) -> tuple[Featurizer, sp.csr_matrix]:
        """``fit`` and ``transform`` of the same texts, reading each text once."""
        import numpy as np
        import scipy.sparse as sp

        n = len(texts)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"{n} texts but {len(w)} weights")
        # Every term gets a provisional id; counts per block, then prune by weighted df.
        # Ids go into int32 buffers (4 bytes each, not a list's 8-byte pointers), and each
        # block's are freed once its matrix is built: at 50,000 comments there are ~11
        # million character n-grams.
        ids: list[dict[str, int]] = [{}, {}, {}]
        raw = [array.array("i"), array.array("i"), array.array("i")]
        ptr = [array.array("q", [0]), array.array("q", [0]), array.array("q", [0])]
        cache: dict[str, list[str]] = {}
        for text, kind in zip(texts, kinds, strict=True):
            blocks = _doc_terms(tokens(text), kind, params, cache)
            for d, idx, p, terms in zip(ids, raw, ptr, blocks, strict=True):
                idx.extend([d.setdefault(t, len(d)) for t in terms])
                p.append(len(idx))
        del cache
        min_df = (params.min_df_word, params.min_df_char, params.min_df_question)
        vocab, matrices, idf = [], [], []
        total = float(w[w > 0].sum())
        for b, m in enumerate(min_df):
            d, idx, p = ids[b], raw[b], ptr[b]
            counts = sp.csr_matrix(
                (
                    np.ones(len(idx), dtype=np.float32),
                    np.frombuffer(idx, dtype=np.int32),
                    np.frombuffer(p, dtype=np.int64),
                ),
                shape=(n, len(d)),
            )
            counts.sum_duplicates()
            # Dropped here: counts may share the buffers, which then go with it.
            raw[b] = ptr[b] = array.array("i")
            del idx, p
            row_w = np.repeat(np.where(w > 0, w, 0.0), np.diff(counts.indptr))
            df = np.bincount(counts.indices, weights=row_w, minlength=len(d))
            del row_w
            names = list(d)  # in provisional id order
            ids[b] = {}
            del d
            kept = sorted((t, i) for i, t in enumerate(names) if df[i] >= m and df[i] > 0)
            del names
            vocab.append([t for t, _ in kept])
            order = np.array([i for _, i in kept], dtype=np.int64)
            del kept
            matrices.append(counts[:, order] if len(order) else sp.csr_matrix((n, 0)))
            del counts
            idf.append(np.log((1.0 + total) / (1.0 + df[order])) + 1.0)
        featurizer = cls(params, vocab, np.concatenate(idf).astype(np.float32))
        counts = sp.hstack(matrices, format="csr", dtype=np.float32)
        del matrices
        return featurizer, featurizer._weigh(counts)

    def _char_columns(self, tok: str) -> list[int]:
        ids = self._char_ids.get(tok)
        if ids is None:
            p = self.params
            padded = " " + tok + " "
            index = self._index[1]
            ids = []
            for n in range(p.char_min, p.char_max + 1):
                for i in range(len(padded) - n + 1):
                    j = index.get(padded[i : i + n])
                    if j is not None:
                        ids.append(j)
            if len(self._char_ids) > 200_000:  # bound the memory a long-lived worker uses
                self._char_ids.clear()
            self._char_ids[tok] = ids
        return ids

    def transform(self, texts: Sequence[str], kinds: Sequence[str]) -> Rows:
        """Rows of sublinear tf-idf, each block L2-normalised then weighted (float32)."""
        import numpy as np

        words, questions = self._index[0], self._index[2]
        indptr = [0]
        indices: list[int] = []
        for text, kind in zip(texts, kinds, strict=True):
            toks = tokens(text)
            for tok in toks:
                j = words.get(tok)
                if j is not None:
                    indices.append(j)
            for a, b in zip(toks, toks[1:], strict=False):
                j = words.get(a + " " + b)
                if j is not None:
                    indices.append(j)
            for tok in toks:
                indices.extend(self._char_columns(tok))
            q = ["@" + kind]
            if len(toks) <= self.params.short_answer:
                q.extend([kind + "|" + tok for tok in toks] or [kind + "|"])
            for term in q:
                j = questions.get(term)
                if j is not None:
                    indices.append(j)
            indptr.append(len(indices))
        counts = Rows.counted(np.array(indices, dtype=np.int64),
                              np.array(indptr, dtype=np.int64), self.n_features)
        return self._weigh(counts)

    def _weigh(self, counts: _Sparse) -> _Sparse:
        """Term counts (duplicates summed) to weighted tf-idf, in place, a few thousand rows
        at a time (every step is per entry or per row, so the chunks change no number and
        bound the temporary arrays)."""
        import numpy as np

        indptr = counts.indptr
        for lo in range(0, counts.shape[0], _WEIGH_ROWS):
            hi = min(lo + _WEIGH_ROWS, counts.shape[0])
            data = counts.data[indptr[lo] : indptr[hi]]
            cols = counts.indices[indptr[lo] : indptr[hi]]
            n = hi - lo
            np.log(data, out=data)
            data += 1.0
            data *= self.idf[cols]
            block = np.searchsorted(self.offsets, cols, side="right") - 1
            rows = np.repeat(np.arange(n), np.diff(indptr[lo : hi + 1]))
            key = rows * len(BLOCKS) + block
            norms = np.sqrt(np.bincount(key, weights=data * data, minlength=n * len(BLOCKS)))
            data /= norms[key].astype(np.float32)
            data *= self._block_weight[block]
        return counts

    def vocabulary_blob(self) -> np.ndarray:
        """Every term, block after block, UTF-8, newline-separated, as a uint8 array."""
        import numpy as np

        joined = "\n".join(t for block in self.block_terms for t in block)
        return np.frombuffer(joined.encode("utf-8"), dtype=np.uint8).copy()

    @staticmethod
    def terms_from_blob(blob: np.ndarray, block_sizes: Iterable[int]) -> list[list[str]]:
        sizes = list(block_sizes)
        terms = bytes(blob.tobytes()).decode("utf-8").split("\n") if sum(sizes) else []
        if len(terms) != sum(sizes):
            raise ValueError(f"vocabulary holds {len(terms)} terms, manifest says {sum(sizes)}")
        out, start = [], 0
        for size in sizes:
            out.append(terms[start : start + size])
            start += size
        return out
