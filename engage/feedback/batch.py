"""Classifying a CSV of comments at once: ``engage feedback classify --input --output``.

For a trust that wants to screen a year of comments, or compare the screen with what
its own staff flagged. Every row comes out in order with what Engage reads in it.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engage.feedback.text.reader import Analysis, Comment

#: Reads a list of comments with the model and rules in force (``analyse_many``).
AnalyseMany = Callable[[Sequence[Comment]], list[Analysis]]

#: The columns read, and the ones added (or replaced, when the input has them already).
IN_COLUMNS = ("text", "question", "language")
OUT_COLUMNS = ("level", "urgent", "reason", "themes", "sentiment", "redacted")
#: Rows analysed together: the theme model reads a batch in one pass.
CHUNK = 500


class BatchError(ValueError):
    """The input cannot be read; the message says what to fix."""


@dataclass
class BatchCounts:
    total: int = 0
    urgent: int = 0
    review: int = 0


def _chunks(reader: Iterator[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    chunk: list[dict[str, str]] = []
    for row in reader:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def classify_csv(input_path: str | Path, output_path: str | Path,
                 analyse_many: AnalyseMany) -> BatchCounts:
    """Read ``input_path`` (UTF-8 CSV with a header; ``text`` required, ``question`` and
    ``language`` optional, either may be empty) and write ``output_path``: every input
    column and row in order, plus :data:`OUT_COLUMNS`, read by ``analyse_many``. Raises
    BatchError."""
    counts = BatchCounts()
    with contextlib.ExitStack() as files:
        try:
            source = files.enter_context(
                Path(input_path).open(encoding="utf-8-sig", newline=""))
        except OSError as exc:
            raise BatchError(f"{input_path}: cannot be read ({exc.strerror})") from None
        reader = csv.DictReader(source)
        try:
            header = list(reader.fieldnames or [])
        except UnicodeDecodeError:
            raise BatchError(f"{input_path}: is not UTF-8 text; save it as CSV UTF-8") from None
        except csv.Error as exc:
            raise BatchError(f"{input_path}: not a CSV file ({exc})") from None
        if "text" not in header:
            found = ", ".join(repr(h) for h in header) or "none"
            raise BatchError(f"{input_path}: needs a column named 'text' (columns found: "
                             f"{found}); 'question' and 'language' are optional")
        columns = header + [c for c in OUT_COLUMNS if c not in header]
        try:
            target = files.enter_context(
                Path(output_path).open("w", encoding="utf-8", newline=""))
        except OSError as exc:
            raise BatchError(f"{output_path}: cannot be written ({exc.strerror})") from None
        writer = csv.DictWriter(target, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        try:
            for chunk in _chunks(reader):
                _classify_chunk(chunk, counts, analyse_many)
                writer.writerows(chunk)
        except UnicodeDecodeError:
            raise BatchError(f"{input_path}: is not UTF-8 text after row "
                             f"{counts.total}; save it as CSV UTF-8") from None
        except csv.Error as exc:
            raise BatchError(f"{input_path}: row {counts.total + 2}: {exc}") from None
    return counts


def _classify_chunk(chunk: list[dict[str, str]], counts: BatchCounts,
                    analyse_many: AnalyseMany) -> None:
    comments: list[Comment] = [
        ((row.get("text") or "").strip(), (row.get("question") or "").strip() or None,
         (row.get("language") or "").strip().lower() or None) for row in chunk]
    present = [n for n, c in enumerate(comments) if c[0]]
    analyses = dict(zip(present, analyse_many([comments[n] for n in present]), strict=True))
    for n, row in enumerate(chunk):
        counts.total += 1
        analysis = analyses.get(n)
        if analysis is None:  # an empty comment: nothing to read
            row.update(level="none", urgent="false", reason="", themes="", sentiment="",
                       redacted="")
            continue
        safety = analysis.safety
        counts.urgent += safety.urgent
        counts.review += safety.level == "review"
        row.update(
            level=safety.level, urgent="true" if safety.urgent else "false",
            reason=safety.reason or "",
            themes="; ".join(name for name, _score in analysis.prediction.themes),
            sentiment=analysis.prediction.sentiment_label or "", redacted=analysis.redacted)
