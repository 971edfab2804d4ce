"""The theme and sentiment model for free-text feedback: training, prediction, safe storage.

Features are sparse tf-idf of the comment and the kind of question it answers
(``features.py``); every theme and the sentiment are ridge regressions fitted together
(``fitting.py``), calibrated into probabilities on out-of-fold scores from grouped
cross-validation, which also tunes each theme's threshold. A model is two files,
``manifest.json`` and ``arrays.npz`` (plain numeric arrays, never pickle). Pure Python,
numpy and scipy: no Flask, no scikit-learn, nothing from ``engage`` outside this package.

numpy and SciPy are imported inside the functions that use them (here and in
``fitting``), so importing this module (every web worker and ``engage`` command does,
through the feedback blueprints) loads none of them: predicting loads numpy and
``scipy.sparse``; training also ``scipy.special``, ``scipy.linalg`` and
``scipy.optimize``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import gzip
import hashlib
import io
import json
import math
import os
import sys
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engage.feedback.text import fitting
from engage.feedback.text.features import (
    BLOCKS,
    QUESTION_KINDS,
    FeatureParams,
    Featurizer,
    question_kind,
)

if TYPE_CHECKING:
    import numpy as np
    import scipy.sparse as sp

__all__ = [
    "BASE_DATA",
    "DEFAULT_MODEL_DIR",
    "FORMAT",
    "FORMAT_VERSION",
    "QUESTION_KINDS",
    "SENTIMENT_LABELS",
    "Example",
    "ModelFormatError",
    "Prediction",
    "ThemeModel",
    "TrainParams",
    "default_model",
    "evaluate",
    "grouped_split",
    "question_kind",
    "read_training_csv",
    "theme_metrics",
    "train",
    "train_default",
    "write_predictions_csv",
]

FORMAT = "engage-themes"
FORMAT_VERSION = 1
SENTIMENT_LABELS = {
    1: "very positive",
    2: "positive",
    3: "neutral",
    4: "negative",
    5: "very negative",
}
N_SENTIMENT = len(SENTIMENT_LABELS)

DEFAULT_MODEL_DIR = Path(__file__).parent / "data" / "default-model"
BASE_DATA = Path(__file__).parent / "data" / "fft-themes-v6.csv.gz"

MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "arrays.npz"

# Columns of the training CSV that are not themes.
ID_COLUMN = "Comment ID"
GROUP_COLUMN = "Respondent ID"
TEXT_COLUMN = "FFT answer"
QUESTION_COLUMN = "FFT question"
RATING_COLUMN = "FFT categorical answer"
SENTIMENT_COLUMN = "Comment sentiment"
NON_THEME_COLUMNS = frozenset(
    {ID_COLUMN, GROUP_COLUMN, TEXT_COLUMN, QUESTION_COLUMN, RATING_COLUMN, SENTIMENT_COLUMN}
)


class ModelFormatError(ValueError):
    """A stored model that cannot be loaded: unknown or newer format, tampered or malformed."""


@dataclass(frozen=True)
class Example:
    """One labelled comment."""

    id: str
    text: str
    question: str | None
    #: Theme names (labels).
    themes: frozenset[str]
    #: 1 (very positive) .. 5 (very negative), or None when not labelled.
    sentiment: int | None
    #: Who wrote it (the Respondent ID); the unit of grouped splits.
    group: str
    #: Counts as this many copies of the comment (df, loss, label counts, thresholds).
    weight: float = 1.0


@dataclass(frozen=True)
class Prediction:
    """Themes and sentiment suggested for one comment."""

    #: Labels whose score reached their threshold, highest score first.
    themes: list[tuple[str, float]]
    #: Every label the model knows -> probability-like confidence in [0, 1].
    scores: dict[str, float]
    sentiment: int
    sentiment_label: str
    sentiment_confidence: float


@dataclass(frozen=True)
class TrainParams:
    """Training parameters (recorded in the model's meta). Features: ``FeatureParams``."""

    #: A theme becomes a label with at least this many positive examples (weighted).
    min_positives: float = 3.0
    #: Ridge penalty (the loss is a weighted sum over comments, not a mean).
    l2: float = 3.0
    #: Grouped cross-validation folds: out-of-fold scores calibrate every label and tune
    #: its threshold.
    folds: int = 3
    #: Thresholds are tuned on this grid; among those within ``threshold_tolerance`` of
    #: the best F1 the median is taken.
    min_threshold: float = 0.02
    max_threshold: float = 0.9
    threshold_tolerance: float = 0.01
    #: Sentiment classes weigh (largest class / class) ** this in the softmax on top.
    sentiment_weight_power: float = 0.5
    sentiment_l2: float = 1e-3


def read_training_csv(path: str | os.PathLike[str]) -> tuple[list[Example], list[str]]:
    """Examples and theme column names (file order) from a CSV in the framework's format.

    Needs ``Comment ID`` and ``FFT answer``; ``Respondent ID`` (defaults to the comment id),
    ``FFT question``, ``FFT categorical answer`` and ``Comment sentiment`` are optional;
    every other column is a theme holding 1 or 0 (blank is 0). Rows with no text are
    skipped. A ``.gz`` file is read through gzip.
    """
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        for required in (ID_COLUMN, TEXT_COLUMN):
            if required not in header:
                raise ValueError(f"{path}: no {required!r} column")
        columns = [c for c in header if c not in NON_THEME_COLUMNS]
        examples = []
        for line, row in enumerate(reader, start=2):
            text = row.get(TEXT_COLUMN) or ""
            if not text.strip():
                continue
            themes = set()
            for col in columns:
                value = (row.get(col) or "").strip()
                if value in ("1", "1.0"):
                    themes.add(col)
                elif value not in ("", "0", "0.0"):
                    raise ValueError(f"{path}, line {line}: {col!r} is {value!r}, not 0 or 1")
            comment_id = row[ID_COLUMN]
            examples.append(
                Example(
                    id=comment_id,
                    text=text,
                    question=row.get(QUESTION_COLUMN) or None,
                    themes=frozenset(themes),
                    sentiment=_parse_sentiment(row.get(SENTIMENT_COLUMN), path, line),
                    group=row.get(GROUP_COLUMN) or comment_id,
                )
            )
    return examples, columns


def _open_text(path: str | os.PathLike[str]) -> IO[str]:
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - returned to a with


def _parse_sentiment(value: str | None, path: object, line: int) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if number not in (1, 2, 3, 4, 5):
        raise ValueError(f"{path}, line {line}: sentiment {value!r} is not 1..5")
    return int(number)


def grouped_split(
    examples: Sequence[Example], fraction: float = 0.2, salt: str = "engage-themes"
) -> tuple[list[Example], list[Example]]:
    """(rest, held out): every group whose salted hash falls under ``fraction`` is held out.

    Deterministic, and a group's place does not depend on the other examples, so the same
    respondent stays on the same side as data grows.
    """
    rest: list[Example] = []
    held: list[Example] = []
    for ex in examples:
        (held if _unit_hash(salt, ex.group) < fraction else rest).append(ex)
    return rest, held


def _unit_hash(salt: str, group: str) -> float:
    digest = hashlib.sha256(f"{salt}\0{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def logistic(z: np.ndarray) -> np.ndarray:
    """The logistic function (SciPy's ``expit``) in numpy alone, written through ``tanh``
    so that no value overflows: predicting one comment need not import ``scipy.special``,
    a tenth of a second of a command's start."""
    import numpy as np

    return 0.5 * (1.0 + np.tanh(0.5 * z))


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Each row's softmax (SciPy's ``softmax(z, axis=1)``), shifted by its maximum so that
    no value overflows."""
    import numpy as np

    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


class ThemeModel:
    """A trained model: featurizer, quantised weights, per-label thresholds."""

    def __init__(
        self,
        *,
        labels: Sequence[str],
        columns: Sequence[str],
        thresholds: Sequence[float] | np.ndarray,
        featurizer: Featurizer,
        weights: np.ndarray,
        scales: np.ndarray,
        bias: np.ndarray,
        version: str,
        meta: Mapping[str, Any],
    ):
        import numpy as np

        self.labels = list(labels)
        self.columns = list(columns)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.featurizer = featurizer
        self.version = version
        self.meta = dict(meta)
        self._stored = {"weights": weights, "scales": scales, "bias": bias}
        # Prediction works on the dequantised weights: the same numbers after a reload.
        self._weights = weights.astype(np.float32) * scales.astype(np.float32)
        self._bias = bias.astype(np.float32)

    def __repr__(self) -> str:
        return f"<ThemeModel {self.version} labels={len(self.labels)}>"

    def decision_scores(
        self, texts: Sequence[str], questions: Sequence[str | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(theme probabilities n x labels, sentiment probabilities n x 5)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        if questions is None:
            questions = [None] * len(texts)
        if len(questions) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(questions)} questions")
        kinds = [question_kind(q) for q in questions]
        x = self.featurizer.transform(texts, kinds)
        z = x @ self._weights
        z += self._bias
        n_labels = len(self.labels)
        return logistic(z[:, :n_labels]), softmax_rows(z[:, n_labels:])

    def predict(
        self, texts: Sequence[str], questions: Sequence[str | None] | None = None
    ) -> list[Prediction]:
        """Suggested themes and sentiment for each text (``questions``: what each answers)."""
        import numpy as np

        themes, sentiment = self.decision_scores(texts, questions)
        labels = self.labels
        hits = themes >= self.thresholds
        best = sentiment.argmax(axis=1)
        out = []
        for i in range(len(themes)):
            row = themes[i].tolist()
            chosen = sorted(
                ((labels[j], row[j]) for j in np.flatnonzero(hits[i]).tolist()),
                key=lambda item: -item[1],
            )
            s = int(best[i]) + 1
            out.append(
                Prediction(
                    themes=chosen,
                    scores=dict(zip(labels, row, strict=True)),
                    sentiment=s,
                    sentiment_label=SENTIMENT_LABELS[s],
                    sentiment_confidence=float(sentiment[i, s - 1]),
                )
            )
        return out

    # --- storage -------------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        import numpy as np

        return {
            "vocabulary": self.featurizer.vocabulary_blob(),
            "idf": self.featurizer.idf.astype(np.float16),
            **self._stored,
        }

    def to_parts(self) -> tuple[dict[str, Any], bytes]:
        """(manifest, arrays.npz bytes): the two halves of a stored model."""
        arrays = _npz_bytes(self._arrays())
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "labels": self.labels,
            "columns": self.columns,
            "thresholds": [round(float(t), 6) for t in self.thresholds],
            "sentiment_labels": {str(k): v for k, v in SENTIMENT_LABELS.items()},
            "question_kinds": list(QUESTION_KINDS),
            "features": {
                "params": self.featurizer.params.to_dict(),
                "blocks": list(BLOCKS),
                "block_sizes": self.featurizer.block_sizes,
            },
            "arrays_sha256": hashlib.sha256(arrays).hexdigest(),
            "meta": self.meta,
        }
        return manifest, arrays

    @classmethod
    def from_parts(cls, manifest: Mapping[str, Any], arrays: bytes) -> ThemeModel:
        """The model stored as ``to_parts`` gave it; ModelFormatError if anything is off."""
        import numpy as np

        if not isinstance(manifest, Mapping):
            raise ModelFormatError("the manifest is not a JSON object")
        fmt = manifest.get("format")
        if fmt != FORMAT:
            raise ModelFormatError(f"not an {FORMAT} model (format is {fmt!r})")
        version = manifest.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ModelFormatError(f"format_version {version!r} is not an integer")
        if version > FORMAT_VERSION:
            raise ModelFormatError(
                f"this model has format_version {version}, newer than the {FORMAT_VERSION} "
                "this version of Engage reads; upgrade Engage or retrain the model"
            )
        if version < 1:
            raise ModelFormatError(f"format_version {version} does not exist")
        digest = hashlib.sha256(arrays).hexdigest()
        if manifest.get("arrays_sha256") != digest:
            raise ModelFormatError(
                "arrays.npz does not match the sha256 in manifest.json "
                "(the files were changed or come from different models)"
            )
        try:
            labels = _str_list(manifest, "labels")
            columns = _str_list(manifest, "columns")
            thresholds = [float(t) for t in manifest["thresholds"]]
            feats = manifest["features"]
            params = FeatureParams.from_dict(feats["params"])
            block_sizes = [int(n) for n in feats["block_sizes"]]
            if list(feats["blocks"]) != list(BLOCKS):
                raise ModelFormatError(f"feature blocks {feats['blocks']!r} are not {BLOCKS!r}")
            model_version = str(manifest["version"])
            meta = dict(manifest.get("meta") or {})
        except ModelFormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"malformed manifest: {exc!r}") from exc
        if len(thresholds) != len(labels) or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ModelFormatError("thresholds must be one number in [0, 1] per label")
        if len(set(labels)) != len(labels) or not set(labels) <= set(columns):
            raise ModelFormatError("labels must be distinct theme columns")
        n_features, width = sum(block_sizes), len(labels) + N_SENTIMENT
        loaded = _load_npz(arrays)
        expected = {
            "vocabulary": (np.uint8, None),
            "idf": (np.float16, (n_features,)),
            "weights": (np.int8, (n_features, width)),
            "scales": (np.float32, (width,)),
            "bias": (np.float32, (width,)),
        }
        if set(loaded) != set(expected):
            raise ModelFormatError(
                f"arrays.npz holds {sorted(loaded)}, expected {sorted(expected)}"
            )
        for name, (dtype, shape) in expected.items():
            arr = loaded[name]
            if arr.dtype != np.dtype(dtype) or (shape is not None and arr.shape != shape):
                raise ModelFormatError(
                    f"array {name!r} is {arr.dtype} {arr.shape}, expected {np.dtype(dtype)} "
                    f"{shape if shape is not None else '(n,)'}"
                )
        if loaded["vocabulary"].ndim != 1:
            raise ModelFormatError("array 'vocabulary' must be one-dimensional")
        try:
            vocab = Featurizer.terms_from_blob(loaded["vocabulary"], block_sizes)
            featurizer = Featurizer(params, vocab, loaded["idf"].astype(np.float32))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ModelFormatError(f"bad vocabulary: {exc}") from exc
        return cls(
            labels=labels,
            columns=columns,
            thresholds=thresholds,
            featurizer=featurizer,
            weights=loaded["weights"],
            scales=loaded["scales"],
            bias=loaded["bias"],
            version=model_version,
            meta=meta,
        )

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``arrays.npz`` and ``manifest.json`` into ``directory`` (created if needed)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        manifest, arrays = self.to_parts()
        # Arrays first, manifest last, each through a rename: a reader never pairs a new
        # manifest with half-written arrays (and the sha256 would catch an old pairing).
        _write_atomic(path / ARRAYS_FILE, arrays)
        text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
        _write_atomic(path / MANIFEST_FILE, text.encode("utf-8"))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ThemeModel:
        path = Path(directory)
        try:
            manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"{path / MANIFEST_FILE} is not JSON: {exc}") from exc
        return cls.from_parts(manifest, (path / ARRAYS_FILE).read_bytes())


def _str_list(manifest: Mapping[str, Any], key: str) -> list[str]:
    value = manifest[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelFormatError(f"{key!r} must be a list of strings")
    return list(value)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An .npz numpy can read, written byte-for-byte the same for the same arrays (fixed
    timestamps, sorted names), so a model's sha256 depends on its numbers alone."""
    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(arrays):
            arr = np.ascontiguousarray(arrays[name])
            if arr.dtype.hasobject:
                raise ValueError(f"array {name!r} holds Python objects")
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def _load_npz(data: bytes) -> dict[str, np.ndarray]:
    import numpy as np

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ValueError as exc:  # numpy refuses object arrays with allow_pickle=False
        raise ModelFormatError(
            f"arrays.npz holds something other than plain arrays: {exc}"
        ) from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFormatError(f"arrays.npz is not a readable .npz file: {exc}") from exc


# --- training ----------------------------------------------------------------------------


def _split_params(params: Mapping[str, Any]) -> tuple[TrainParams, FeatureParams]:
    train_names = {f.name for f in fields(TrainParams)}
    feature_names = {f.name for f in fields(FeatureParams)}
    unknown = set(params) - train_names - feature_names
    if unknown:
        raise TypeError(f"unknown training parameters: {sorted(unknown)}")
    return (
        TrainParams(**{k: v for k, v in params.items() if k in train_names}),
        FeatureParams(**{k: v for k, v in params.items() if k in feature_names}),
    )


def train(
    examples: Sequence[Example],
    *,
    columns: Sequence[str] | None = None,
    seed: int = 0,
    **params: Any,
) -> ThemeModel:
    """Fit a model. Labels are ``columns`` (plus any theme seen in the examples but not in
    ``columns``, appended in sorted order) with at least ``min_positives`` positive examples.
    ``params`` are ``TrainParams`` and ``FeatureParams`` fields. Deterministic: the same
    examples, columns, seed and parameters give the same arrays. ``seed`` picks the folds
    used to tune the thresholds.
    """
    return _train(examples, columns=columns, seed=seed, **params)[0]


def _train(
    examples: Sequence[Example],
    *,
    columns: Sequence[str] | None = None,
    seed: int = 0,
    **params: Any,
) -> tuple[ThemeModel, np.ndarray]:
    """``train``, also giving the weights before quantisation (for measuring its cost)."""
    import numpy as np
    from scipy.special import expit


    started = time.perf_counter()
    tp, fp = _split_params(params)
    if not examples:
        raise ValueError("no examples to train on")
    if any(not (ex.weight >= 0 and math.isfinite(ex.weight)) for ex in examples):
        raise ValueError("example weights must be finite and not negative")
    all_columns = list(dict.fromkeys(columns or []))
    seen = sorted({t for ex in examples for t in ex.themes} - set(all_columns))
    all_columns += seen
    positives = {c: 0.0 for c in all_columns}
    for ex in examples:
        for t in ex.themes:
            positives[t] += ex.weight
    labels = [c for c in all_columns if positives[c] >= tp.min_positives]

    if tp.folds < 2:
        raise ValueError("folds must be at least 2 (out-of-fold scores calibrate the labels)")
    live = [ex for ex in examples if ex.weight > 0]
    if not live:
        raise ValueError("every example has weight 0")
    weights = np.array([ex.weight for ex in live], dtype=np.float64)
    y = _label_matrix(live, labels)
    sentiment = np.array(
        [ex.sentiment - 1 if ex.sentiment is not None else -1 for ex in live], dtype=np.int64
    )
    if ((sentiment < -1) | (sentiment >= N_SENTIMENT)).any():
        raise ValueError("sentiment must be 1..5 or None")
    has_s = sentiment >= 0
    # Sentiment columns of the ridge: one-hot; a comment without a sentiment gets the
    # (weighted) class frequencies, which says nothing about its own text.
    onehot = np.zeros((len(live), N_SENTIMENT))
    onehot[np.flatnonzero(has_s), sentiment[has_s]] = 1.0
    if has_s.any():
        onehot[~has_s] = weights[has_s] @ onehot[has_s] / weights[has_s].sum()
    targets = np.hstack([y, onehot])

    texts = [ex.text for ex in live]
    kinds = [question_kind(ex.question) for ex in live]
    # One vocabulary for every fit below: it uses the texts, never the labels.
    featurizer, x = Featurizer.fit_transform(texts, kinds, fp, weights)
    del texts, kinds

    # Out-of-fold scores (each fold's model never saw the labels it scores) and the final
    # fit on everything, exactly up to EXACT_MAX_EXAMPLES examples, iteratively above.
    fold = fitting.fold_of([_unit_hash(f"folds-{seed}", ex.group) for ex in live], tp.folds)
    fit = _ridge_exact if len(live) <= fitting.EXACT_MAX_EXAMPLES else _ridge_iterative
    oof, coef, bias, solver = fit(x, targets, weights, fold, tp)
    n_labels = len(labels)
    slope, intercept = fitting.platt(oof[:, :n_labels], y, weights)
    grid = np.round(np.arange(tp.min_threshold, tp.max_threshold + 1e-9, 0.01), 2)
    thresholds = fitting.tune_thresholds(
        expit(slope * oof[:, :n_labels] + intercept),
        y,
        weights,
        grid,
        tp.threshold_tolerance,
        0.5,
    )
    s_rows = np.flatnonzero(has_s)
    mix, mix_bias = fitting.softmax_stacker(
        oof[s_rows, n_labels:],
        sentiment[s_rows],
        weights[s_rows],
        N_SENTIMENT,
        tp.sentiment_l2,
        tp.sentiment_weight_power,
    )

    # The calibration folded into the final fit's weights, so that prediction is one sparse
    # product, a sigmoid and a softmax.
    coef = np.hstack([coef[:, :n_labels] * slope, coef[:, n_labels:] @ mix])
    bias = np.concatenate([bias[:n_labels] * slope + intercept, bias[n_labels:] @ mix + mix_bias])
    if not has_s.any():
        # Nothing to learn sentiment from: every comment comes out neutral (at 0.2).
        bias[n_labels + 2] += 1e-3
    q_weights, scales = _quantise(coef)
    # Features whose weights all round to zero cost bytes and time for nothing.
    keep = np.flatnonzero(np.abs(q_weights).max(axis=1) > 0)
    featurizer = _subset_featurizer(featurizer, keep)
    q_weights = q_weights[keep]

    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    counts = y.sum(axis=0)
    meta = {
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "n_examples": len(live),
        "n_groups": len({ex.group for ex in live}),
        "n_sentiment": int(has_s.sum()),
        "total_weight": float(weights.sum()),
        "seed": seed,
        "params": {**asdict(tp), **fp.to_dict()},
        "label_positives": {c: round(positives[c], 3) for c in all_columns},
        "too_few_examples": [c for c in all_columns if c not in labels],
        "n_features": featurizer.n_features,
        "train_seconds": round(time.perf_counter() - started, 2),
        "label_examples": {lab: int(n) for lab, n in zip(labels, counts, strict=True)},
        "solver": solver,
    }
    model = ThemeModel(
        labels=labels,
        columns=all_columns,
        thresholds=thresholds,
        featurizer=featurizer,
        weights=q_weights,
        scales=scales,
        bias=bias.astype(np.float32),
        version="",
        meta=meta,
    )
    _, arrays = model.to_parts()
    model.version = f"{meta['created']}-{hashlib.sha256(arrays).hexdigest()[:8]}"
    return model, coef[keep]


def _ridge_exact(
    x: sp.csr_matrix, targets: np.ndarray, weights: np.ndarray, fold: np.ndarray, tp: TrainParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(out-of-fold scores, weights, bias, solver summary) through the n x n Gram matrix:
    one Cholesky per fit, n^2 memory."""
    import numpy as np


    g = fitting.gram(x)
    oof = np.zeros(targets.shape)
    for k in range(tp.folds):
        held = np.flatnonzero(fold == k)
        fit_rows = np.flatnonzero(fold != k)
        if len(held) and len(fit_rows):
            sol = fitting.solve_ridge(g, targets, weights, fit_rows, tp.l2)
            oof[held] = fitting.ridge_scores(g, sol, held)
    sol = fitting.solve_ridge(g, targets, weights, np.arange(len(g)), tp.l2, overwrite=True)
    del g
    coef, bias = fitting.primal(x, sol)
    return oof, coef, bias, {"method": "cholesky"}


def _ridge_iterative(
    x: sp.csr_matrix, targets: np.ndarray, weights: np.ndarray, fold: np.ndarray, tp: TrainParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """``_ridge_exact``'s regressions by preconditioned conjugate gradients: X only through
    sparse products, memory linear in n. (Starting a fit from a neighbouring fold's
    solution saved no iterations, so every fit starts from zero.)"""
    import numpy as np


    # The module's constants are read here, at call time, so a test or a benchmark can
    # change them.
    nystroem = fitting.Nystroem.build(
        x, weights, fitting.NYSTROEM_RANK, fitting.NYSTROEM_SEED, fitting.NYSTROEM_POWER
    )
    cg = functools.partial(
        fitting.solve_ridge_cg,
        nystroem=nystroem,
        tolerance=fitting.CG_TOLERANCE,
        max_iterations=fitting.CG_MAX_ITERATIONS,
    )
    oof = np.zeros(targets.shape)
    reports = []
    for k in range(tp.folds):
        held = np.flatnonzero(fold == k)
        fit_rows = np.flatnonzero(fold != k)
        if len(held) and len(fit_rows):
            sol, report = cg(x, targets, weights, fit_rows, tp.l2)
            reports.append(report)
            coef, bias = fitting.primal(x, sol)
            del sol
            oof[held] = fitting.primal_scores(x, coef, bias, held)
            del coef, bias
    all_rows = np.arange(x.shape[0])
    sol, report = cg(x, targets, weights, all_rows, tp.l2)
    reports.append(report)
    del nystroem, cg
    coef, bias = fitting.primal(x, sol)
    solver = {
        "method": "conjugate gradients",
        "tolerance": fitting.CG_TOLERANCE,
        "preconditioner": f"Nystroem, rank {fitting.NYSTROEM_RANK}, "
        f"{fitting.NYSTROEM_POWER} subspace iteration(s)",
        "iterations": [r.iterations for r in reports],
        "max_residual": float(max(r.residuals.max(initial=0.0) for r in reports)),
        "converged": all(r.converged for r in reports),
    }
    return oof, coef, bias, solver


def _label_matrix(examples: Sequence[Example], labels: Sequence[str]) -> np.ndarray:
    import numpy as np

    index = {lab: j for j, lab in enumerate(labels)}
    y = np.zeros((len(examples), len(labels)))
    for i, ex in enumerate(examples):
        for t in ex.themes:
            j = index.get(t)
            if j is not None:
                y[i, j] = 1.0
    return y


def _quantise(coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights and one float32 scale per output column."""
    import numpy as np

    peak = np.abs(coef).max(axis=0) if len(coef) else np.zeros(coef.shape[1])
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.rint(coef / scales.astype(np.float64)).clip(-127, 127).astype(np.int8)
    return q, scales


def _subset_featurizer(featurizer: Featurizer, keep: np.ndarray) -> Featurizer:
    import numpy as np

    vocab, start = [], 0
    for terms, end in zip(featurizer.block_terms, featurizer.offsets[1:], strict=True):
        in_block = keep[(keep >= start) & (keep < end)] - start
        vocab.append([terms[i] for i in in_block.tolist()])
        start = int(end)
    idf = featurizer.idf[keep].astype(np.float16).astype(np.float32)
    return Featurizer(featurizer.params, vocab, idf)


# --- evaluation ----------------------------------------------------------------------------


def evaluate(model: ThemeModel, examples: Sequence[Example]) -> dict[str, Any]:
    """Theme F1 (micro; macro over labels with a positive in ``examples``; per label) and
    sentiment accuracy, macro-F1 and within-one on the examples that have a sentiment.

    Themes the model cannot predict (too few training examples) count as never predicted.
    """
    import numpy as np

    preds = model.predict([ex.text for ex in examples], [ex.question for ex in examples])
    out = theme_metrics(
        [ex.themes for ex in examples], [[t for t, _ in p.themes] for p in preds], model.columns
    )
    s_true = np.array([ex.sentiment or 0 for ex in examples])
    s_pred = np.array([p.sentiment for p in preds])
    has = s_true > 0
    out["sentiment"] = _sentiment_scores(s_true[has], s_pred[has])
    return out


def theme_metrics(
    truth: Sequence[Iterable[str]], predicted: Sequence[Iterable[str]], columns: Iterable[str] = ()
) -> dict[str, Any]:
    """{"n", "micro_f1", "macro_f1", "per_label"} of predicted theme sets against the true
    ones; macro-F1 averages the labels with at least one true positive; ``columns`` only
    orders ``per_label``."""
    import numpy as np

    true_sets = [set(t) for t in truth]
    guess_sets = [set(p) for p in predicted]
    if len(true_sets) != len(guess_sets):
        raise ValueError(f"{len(true_sets)} truths but {len(guess_sets)} predictions")
    universe = list(dict.fromkeys([*columns, *sorted(set().union(*true_sets, *guess_sets))]))
    index = {lab: j for j, lab in enumerate(universe)}
    t_mat = np.zeros((len(true_sets), len(universe)), dtype=bool)
    g_mat = np.zeros_like(t_mat)
    for i, (t, g) in enumerate(zip(true_sets, guess_sets, strict=True)):
        t_mat[i, [index[x] for x in t]] = True
        g_mat[i, [index[x] for x in g]] = True
    tp_ = (t_mat & g_mat).sum(axis=0)
    fp_ = (~t_mat & g_mat).sum(axis=0)
    fn_ = (t_mat & ~g_mat).sum(axis=0)
    per_label = {}
    f1s = []
    for j, lab in enumerate(universe):
        support = int(tp_[j] + fn_[j])
        if support == 0 and fp_[j] == 0:
            continue
        f1 = 2 * tp_[j] / (2 * tp_[j] + fp_[j] + fn_[j])
        if support:
            f1s.append(f1)
        per_label[lab] = {
            "f1": round(float(f1), 4),
            "precision": round(float(tp_[j] / (tp_[j] + fp_[j])), 4) if tp_[j] + fp_[j] else 0.0,
            "recall": round(float(tp_[j] / support), 4) if support else 0.0,
            "support": support,
        }
    return {
        "n": len(true_sets),
        "micro_f1": _f1(tp_.sum(), fp_.sum(), fn_.sum()),
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
        "per_label": per_label,
    }


def _f1(tp_: float, fp_: float, fn_: float) -> float:
    denom = 2 * tp_ + fp_ + fn_
    return round(float(2 * tp_ / denom), 4) if denom else 0.0


def _sentiment_scores(truth: np.ndarray, guess: np.ndarray) -> dict[str, Any]:
    import numpy as np

    if len(truth) == 0:
        return {"n": 0, "accuracy": 0.0, "macro_f1": 0.0, "within_one": 0.0}
    classes = sorted(set(truth.tolist()) | set(guess.tolist()))
    f1s = [
        _f1(
            ((truth == c) & (guess == c)).sum(),
            ((truth != c) & (guess == c)).sum(),
            ((truth == c) & (guess != c)).sum(),
        )
        for c in classes
    ]
    return {
        "n": len(truth),
        "accuracy": round(float((truth == guess).mean()), 4),
        "macro_f1": round(float(np.mean(f1s)), 4),
        "within_one": round(float((np.abs(truth - guess) <= 1).mean()), 4),
    }


# --- the shipped model and batch predictions ------------------------------------------------


@functools.lru_cache(maxsize=1)
def default_model() -> ThemeModel:
    """The model shipped with Engage (trained on the framework data), loaded once."""
    return ThemeModel.load(DEFAULT_MODEL_DIR)


def _read_rows(path: str | os.PathLike[str]) -> Iterator[dict[str, str]]:
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for required in (ID_COLUMN, TEXT_COLUMN):
            if required not in header:
                raise ValueError(f"{path}: no {required!r} column")
        yield from reader


def write_predictions_csv(
    model: ThemeModel,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    batch_size: int = 2000,
) -> int:
    """Predict every row of ``input_path`` (needs ``Comment ID`` and ``FFT answer``;
    ``FFT question`` is used when present) into ``output_path``: ``Comment ID``, one 0/1
    column per theme in ``model.columns``, then ``Comment sentiment`` (1..5). Returns the
    number of rows written."""
    written = 0
    with open(output_path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([ID_COLUMN, *model.columns, SENTIMENT_COLUMN])
        batch: list[dict[str, str]] = []
        for row in _read_rows(input_path):
            batch.append(row)
            if len(batch) >= batch_size:
                written += _write_batch(model, batch, writer)
                batch = []
        if batch:
            written += _write_batch(model, batch, writer)
    return written


def _write_batch(model: ThemeModel, rows: list[dict[str, str]], writer: Any) -> int:
    preds = model.predict(
        [r.get(TEXT_COLUMN) or "" for r in rows], [r.get(QUESTION_COLUMN) or None for r in rows]
    )
    for row, pred in zip(rows, preds, strict=True):
        chosen = {t for t, _ in pred.themes}
        writer.writerow(
            [row[ID_COLUMN], *(int(c in chosen) for c in model.columns), pred.sentiment]
        )
    return len(rows)


# --- command line ---------------------------------------------------------------------------


def train_default(
    data: str | os.PathLike[str] = BASE_DATA,
    directory: str | os.PathLike[str] = DEFAULT_MODEL_DIR,
    *,
    seed: int = 0,
    **params: Any,
) -> ThemeModel:
    """Train on all of ``data`` and save it, with the figures of the same training on 80 %
    of the respondents, evaluated on the other 20 % (``grouped_split``), in its meta."""
    examples, columns = read_training_csv(data)
    rest, held = grouped_split(examples)
    trial = train(rest, columns=columns, seed=seed, **params)
    figures = evaluate(trial, held)
    model = train(examples, columns=columns, seed=seed, **params)
    model.meta["data_sources"] = [_data_source(data)]
    model.meta["evaluation"] = {
        "method": "grouped_split(examples, 0.2): trained on 80 % of the respondents with the "
        "same parameters, evaluated on the other 20 %",
        "n_train": len(rest),
        **figures,
    }
    model.save(directory)
    return ThemeModel.load(directory)


def _data_source(path: str | os.PathLike[str]) -> dict[str, str]:
    if Path(path).resolve() == BASE_DATA.resolve():
        return {
            "name": "NHS England patient experience framework v6 (fft-themes-v6.csv.gz)",
            "origin": "The-Strategy-Unit/pxtextmining datasets/v6framework_230831.csv, "
            "MIT licence, copyright NHS England",
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        }
    return {"name": Path(path).name, "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engage.feedback.text.model")
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train a model on a CSV and save it")
    p_train.add_argument("--data", default=str(BASE_DATA))
    p_train.add_argument("--model", required=True, help="directory to write the model into")
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument(
        "--evaluate", action="store_true", help="also train on 80 %% and store its figures"
    )
    p_pred = sub.add_parser("predict", help="predict a CSV of comments")
    p_pred.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    p_pred.add_argument("--input", required=True)
    p_pred.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    if args.command == "train":
        if args.evaluate:
            model = train_default(args.data, args.model, seed=args.seed)
        else:
            examples, columns = read_training_csv(args.data)
            model = train(examples, columns=columns, seed=args.seed)
            model.meta["data_sources"] = [_data_source(args.data)]
            model.save(args.model)
        print(f"{model.version}: {len(model.labels)} labels, {model.meta['n_examples']} examples")
        if "evaluation" in model.meta:
            ev = model.meta["evaluation"]
            print(f"held-out micro-F1 {ev['micro_f1']}, macro-F1 {ev['macro_f1']}")
    else:
        n = write_predictions_csv(ThemeModel.load(args.model), args.input, args.output)
        print(f"{n} rows written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
