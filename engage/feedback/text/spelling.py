"""Misspelt safety words: "sucidal", "negelcted", "myslef" read as the words they mean.

Patients type on phones, in a hurry and in distress; a safety screen that only
knows correct spelling misses them. Before the rules run, each word of a comment
that is **not a known word** of English or Spanish and lies **one edit** (a letter
added, dropped, changed, or two neighbours swapped) from a word the rules use is
read as that word. Known words are never changed, so "amused" never becomes
"abused" and "spoiled" never "soiled": only words no dictionary of everyday
language holds are corrected.

- Words of 5 letters or more may take any one edit; words of 8 or more two
  ("suicidle" -> "suicidal"); words of 3 or 4 letters only the loss of one letter
  ("kil" -> "kill", "lfe" -> "life"), the commonest slip on a phone keyboard,
  because most short edits make another real word.
- A rule word ending in ``*`` ("neglect*") is a stem: "negelcted" reads as
  "neglected".
- A word the rules themselves use is never changed, even a misspelling they list on
  purpose ("myslef"): it counts for the phrases that list it, so list it in each rule
  that needs it.
- Arabic is not corrected: its joined prefixes and root patterns put real words
  one edit apart too often. The rules list Arabic variants explicitly instead.

The known words (``data/known_words.txt.gz``) are the English and Spanish words
with a Zipf frequency of at least :data:`KNOWN_ZIPF` in the ``wordfreq`` project's
lists (data: CC BY-SA 4.0, Robyn Speer and contributors; see ``data/NOTICE.md``),
normalised as the rules read text. ``python -m engage.feedback.text.spelling``
writes the file again (it needs ``pip install -e ".[data]"``).
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KNOWN_ZIPF", "Correction", "Speller", "known_words"]

KNOWN_WORDS = Path(__file__).parent / "data" / "known_words.txt.gz"
#: A word at least this frequent (Zipf scale: 3 is once per million words) is "known".
KNOWN_ZIPF = 2.5
#: Shortest word that may take any single edit; shorter words only a dropped letter.
ANY_EDIT_FROM = 5
#: Shortest word corrected at all.
SHORTEST = 3
#: Longest: no word of the rules is longer, and longer strings are not words.
LONGEST = 24
#: Shortest word that may take two edits ("suicidle" for "suicidal"): long words are far
#: enough apart that two slips rarely make another word of the rules.
TWO_EDITS_FROM = 8
_LATIN = re.compile(r"^[a-z]+$")


@functools.cache
def known_words() -> frozenset[str]:
    """The everyday words of English and Spanish, normalised; read once per process."""
    return frozenset(gzip.decompress(KNOWN_WORDS.read_bytes()).decode("utf-8").split())


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def within_one_edit(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by one insertion, deletion, substitution or swap
    of two neighbouring letters (optimal string alignment distance <= 1)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (len(diff) == 2 and diff[1] == diff[0] + 1
                and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if la > lb:
        a, b = b, a  # a is the shorter
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def edits(a: str, b: str, most: int = 2) -> int:
    """The optimal string alignment distance of ``a`` and ``b`` (insertions, deletions,
    substitutions, swaps of neighbours), or ``most + 1`` when it is more than ``most``."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], previous2[j - 2] + 1)
        if min(row) > most:
            return most + 1
        previous2, previous = previous, row
    return min(previous[len(b)], most + 1)


@dataclass(frozen=True)
class Correction:
    """A word read as another: ``start``/``end`` index the normalised text it was in."""

    start: int
    end: int
    typed: str
    read_as: str


class Speller:
    """Reads misspelt words as the rule words they are one edit from.

    ``words`` are whole words the rules use; ``stems`` are beginnings of words
    (a rule's ``neglect*``). Both are normalised, Latin letters only.
    """

    def __init__(self, words: Iterable[str], stems: Iterable[str] = (),
                 known: frozenset[str] | None = None) -> None:
        self.words = frozenset(w for w in words if len(w) >= SHORTEST + 1 and _LATIN.match(w))
        self.stems = frozenset(s for s in stems if len(s) >= SHORTEST + 1 and _LATIN.match(s))
        self._known = known
        self._by_key: dict[str, set[str]] = {}
        for word in self.words:
            for key in (word, *_deletes(word)):
                self._by_key.setdefault(key, set()).add(word)
        self._stems_by_key: dict[str, set[str]] = {}
        for stem in self.stems:
            for key in (stem, *_deletes(stem)):
                self._stems_by_key.setdefault(key, set()).add(stem)
        self._stem_lengths = sorted({len(s) for s in self.stems})

    @functools.cached_property
    def _by_key2(self) -> dict[str, set[str]]:
        """Long rule words under every way of dropping two letters, for two-edit slips:
        built the first time a long word is neither a rule word, one slip from one, nor
        a known word (half the cost of building a speller, which a process classifying
        one comment may never need)."""
        by_key2: dict[str, set[str]] = {}
        for word in self.words:
            if len(word) >= TWO_EDITS_FROM:
                for once in _deletes(word):
                    for key in _deletes(once):
                        by_key2.setdefault(key, set()).add(word)
        return by_key2

    def warm(self) -> None:
        """Build now what is otherwise built at first need (the everyday words, the
        two-slip index): for a web worker, before any patient's comment waits for it."""
        self.known  # noqa: B018
        self._by_key2  # noqa: B018

    @property
    def known(self) -> frozenset[str]:
        """The everyday words, read from disk the first time a word is near a rule word."""
        if self._known is None:
            self._known = known_words()
        return self._known

    def read_as(self, word: str) -> str | None:
        """The word ``word`` is read as, or None when it stays as typed."""
        if (not SHORTEST <= len(word) <= LONGEST or word in self.words
                or not _LATIN.match(word)):
            return None
        short = len(word) < ANY_EDIT_FROM
        found = self._whole(word, short)
        if found is None and not short:
            found = self._stemmed(word)
        if found is None and len(word) >= TWO_EDITS_FROM and word not in self.known:
            found = self._two_edits(word)
        # Most short words are near no rule word; only those that are ask the dictionary.
        return None if found is None or word in self.known else found

    def _whole(self, word: str, short: bool) -> str | None:
        if short:  # only a dropped letter: the rule word minus one letter is what was typed
            options = self._by_key.get(word, set())
            matches = [w for w in options if len(w) == len(word) + 1]
        else:
            options = set(self._by_key.get(word, ()))
            for key in _deletes(word):
                options |= self._by_key.get(key, set())
            matches = [w for w in options if within_one_edit(word, w)]
        if len(matches) > 1:
            # Near both a real word and a misspelling the rules list ("myslf": "myself",
            # "myslef"): the real word.
            matches = [w for w in matches if w in self.known]
        return matches[0] if len(matches) == 1 else None

    def _two_edits(self, word: str) -> str | None:
        """A long rule word two slips away, when exactly one is (and no other word of the
        rules is one slip away, which :meth:`_whole` would have found)."""
        options: set[str] = set()
        for once in {word, *_deletes(word)}:
            for key in {once, *_deletes(once)}:
                options |= self._by_key2.get(key, set())
                options |= self._by_key.get(key, set())
        matches = [w for w in options if len(w) >= TWO_EDITS_FROM and edits(word, w) <= 2]
        if len(matches) > 1:
            matches = [w for w in matches if w in self.known]
        return matches[0] if len(matches) == 1 else None

    def _stemmed(self, word: str) -> str | None:
        found: set[str] = set()
        for length in self._stem_lengths:
            for cut in (length - 1, length, length + 1):
                if cut < SHORTEST + 1 or cut > len(word):
                    continue
                head = word[:cut]
                options = set(self._stems_by_key.get(head, ()))
                for key in _deletes(head):
                    options |= self._stems_by_key.get(key, set())
                for stem in options:
                    if len(stem) == length and head != stem and within_one_edit(head, stem):
                        found.add(stem + word[cut:])
        return min(found) if len(found) == 1 else None

    def correct(self, norm: str, index: list[int]) -> tuple[str, list[int], list[Correction]]:
        """``norm`` (one space between words) with misspelt words replaced, its index map
        into the original text, and what was replaced. Unchanged when nothing is."""
        if not self.words and not self.stems:
            return norm, index, []
        out: list[str] = []
        out_index: list[int] = []
        fixes: list[Correction] = []
        pos = 0
        length = len(norm)
        while pos < length:
            end = norm.find(" ", pos)
            if end < 0:
                end = length
            word = norm[pos:end]
            fixed = self.read_as(word)
            if fixed is None:
                out.append(word)
                out_index.extend(index[pos:end])
            else:
                start_out = sum(len(w) for w in out) + len(out)
                out.append(fixed)
                # Every letter of the reading points into the typed word, so a highlight
                # covers the word as the patient wrote it.
                span = index[pos:end]
                out_index.extend(span[min(i, len(span) - 1)] for i in range(len(fixed)))
                fixes.append(Correction(start_out, start_out + len(fixed), word, fixed))
            if end < length:
                out_index.append(index[end])
            pos = end + 1
        if not fixes:
            return norm, index, []
        return " ".join(out), out_index, fixes


def build_known_words(path: Path = KNOWN_WORDS, zipf: float = KNOWN_ZIPF) -> int:
    """Write the known-words file from ``wordfreq`` (English and Spanish); returns its size."""
    from wordfreq import iter_wordlist, zipf_frequency  # only to rebuild the data file

    from engage.feedback.text.safety import normalise

    words: set[str] = set()
    for lang in ("en", "es"):
        for raw in iter_wordlist(lang, wordlist="large"):
            if zipf_frequency(raw, lang, wordlist="large") < zipf:
                break
            norm = normalise(raw)
            if " " not in norm and len(norm) >= SHORTEST and _LATIN.match(norm):
                words.add(norm)
    with gzip.GzipFile(path, "wb", mtime=0) as raw_file:
        raw_file.write(("\n".join(sorted(words)) + "\n").encode("utf-8"))
    return len(words)


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    print(f"wrote {build_known_words()} words to {KNOWN_WORDS}")
