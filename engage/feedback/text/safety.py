"""The safety screen: urgent and review rules a clinical safety officer edits, no model involved.

The rules live in ``data/safety_rules.json`` (format and phrase syntax in
``docs/safety-rules.md``). Each rule has a **level**: ``urgent`` (risk to life or
ongoing abuse: clinicians are alerted at once) or ``review`` (a possible
safeguarding concern: a person reads it within a target). A rule may also be
**anchored**: its phrases count only within a few words of an *anchor* (a person,
a body, a time span, a place...), which lets a review rule list broad harm and
neglect vocabulary ("soiled", "left ... alone", "pinched") without firing on every
use of the word.

Every text is checked against every language's phrases, because comments mix
languages and the declared language can be wrong. Matching runs over a normalised
copy of the text (case-folded, accents and Arabic diacritics stripped, Arabic
letter variants unified, punctuation turned into single spaces) in which misspelt
rule words are read as the words they mean (:mod:`.spelling`), and reports offsets
into the original text through an index map, so the app can highlight exactly what
fired.

Missing an urgent comment is far worse than a false alarm: negated and hedged
phrasings ("I'm not suicidal, but...") match on purpose, so that a person reads them.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from engage.feedback.text.spelling import Correction, Speller

__all__ = [
    "CATEGORIES",
    "DEFAULT_WINDOW",
    "Anchor",
    "Level",
    "Match",
    "Phrase",
    "Rule",
    "RuleError",
    "SafetyResult",
    "SafetyRules",
    "default_rules",
    "normalise",
    "validate_rules",
]


class Level(StrEnum):
    """How soon a person must read a comment. Ordered: ``urgent`` outranks ``review``."""

    URGENT = "urgent"
    REVIEW = "review"
    NONE = "none"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Level.URGENT: 2, Level.REVIEW: 1, Level.NONE: 0}
#: The levels a rule can have (``none`` is what a comment gets when no rule fires).
RULE_LEVELS = (Level.URGENT.value, Level.REVIEW.value)

CATEGORIES = ("self-harm", "abuse", "neglect", "safeguarding", "danger", "environment",
              "impaired-staff")

_DATA = Path(__file__).parent / "data" / "safety_rules.json"
_RULE_KEYS = {"id", "category", "description", "level", "near", "window", "urgent_if",
              "phrases", "exclusions", "notes"}
_ANCHOR_KEYS = {"id", "description", "phrases"}
_TOP_KEYS = {"version", "rules", "anchors", "notes"}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_LANG_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
#: ``...`` lets this many words stand between its neighbours.
DOTS_GAP = 3
#: The widest ``~N`` gap a phrase may ask for.
MAX_GAP = 10
#: An anchored rule's phrase counts when an anchor lies within this many words of it.
DEFAULT_WINDOW = 6
#: The widest window a rule may ask for.
MAX_WINDOW = 15


class RuleError(ValueError):
    """The rules are malformed; ``problems`` lists every problem found, one per line."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --- normalisation ----------------------------------------------------------------

# Apostrophes join the letters around them ("don't" -> "dont", "I'm" -> "im"), so a
# phrase matches whether or not the writer typed the apostrophe.
_APOSTROPHES = frozenset("'\u2019\u2018\u02bc\u02bb`\u00b4\u2032")
# Arabic letters that people write interchangeably. Alef with hamza or madda, and
# waw/yeh with hamza, lose the hamza by decomposition (NFKD) plus dropping marks.
_ARABIC_FOLD = {
    "\u0671": "\u0627",  # alef wasla -> alef
    "\u0649": "\u064a",  # alef maksura -> yeh
    "\u0629": "\u0647",  # teh marbuta -> heh
    "\u06cc": "\u064a",  # Farsi yeh -> yeh
    "\u06a9": "\u0643",  # keheh -> kaf
}
_TATWEEL = "\u0640"
_SPACE = " "


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """What one character becomes: letters/digits, ``" "`` for a separator, ``""`` to drop."""
    if ch in _APOSTROPHES or ch == _TATWEEL:
        return ""
    out = []
    separator = False
    for c in unicodedata.normalize("NFKD", ch.casefold()):
        c = _ARABIC_FOLD.get(c, c)
        cat = unicodedata.category(c)
        if cat == "Mn" or c == _TATWEEL:
            continue  # accents, Arabic harakat, shadda, hamza/madda above or below
        if cat[0] in "LN" or cat == "Mc":
            if cat == "Nd":
                c = str(unicodedata.decimal(c))  # Arabic-Indic digits -> ASCII
            out.append(c)
        else:
            separator = True
    if out:
        return "".join(out)
    return _SPACE if separator else ""


def _normalise_map(text: str) -> tuple[str, list[int]]:
    """The normalised text and, for each of its characters, the index in ``text`` it came from.

    Words are separated by exactly one space and there is no space at either end.
    """
    chars: list[str] = []
    index: list[int] = []
    pending_space = False
    for i, ch in enumerate(text):
        folded = _fold_char(ch)
        if not folded:
            continue
        if folded == _SPACE:
            pending_space = bool(chars)
            continue
        if pending_space:
            chars.append(_SPACE)
            index.append(i)
            pending_space = False
        for c in folded:
            chars.append(c)
            index.append(i)
    return "".join(chars), index


def normalise(text: str) -> str:
    """Text as the rules see it: lower case, no accents or harakat, one space between words."""
    if text.isascii() and text.isalnum() and text.islower():
        return text  # one plain word already (most words of the rules)
    return _normalise_map(text)[0]


@functools.lru_cache(maxsize=16384)
def _normalise_piece(piece: str) -> str:
    """:func:`normalise` for the words of phrases: the same few hundred words recur."""
    return normalise(piece)


def _dropped(ch: str) -> bool:
    return _fold_char(ch) == "" and ch not in _APOSTROPHES


# --- phrase syntax -------------------------------------------------------------------

_ARABIC_LETTER = re.compile(r"[\u0621-\u064a\u0671-\u06d3]")
# Clitics written joined to an Arabic word: "and", "so", "with", "for", "like",
# future "will", and the article. "الموت" then also matches "والموت" and "بالموت".
_ARABIC_PREFIX = "(?:[وف])?(?:[بكل]?ال|لل|[بكلس])?"
_WORD_CHAR = "[^ ]"
_GAP_RE = re.compile(r"^~(\d+)$")
_KEY_LEN = 3
_INFIX = "\x00"  # marks an index key that may start anywhere inside a word


class _PhraseSyntaxError(Exception):
    pass


_Keys = frozenset[str] | None  # possible first letters of a match; None: could be anything


def _literal_keys(literal: str) -> frozenset[str]:
    key = literal[:_KEY_LEN]
    return frozenset({key.split(" ")[0]})


def _union(keys: list[_Keys]) -> _Keys:
    if any(k is None for k in keys):
        return None
    return frozenset().union(*keys)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=16384)  # groups of words recur across phrases
def _word(word: str) -> tuple[str, _Keys]:
    """One word: literal letters, ``*`` for any letters, ``=`` to forbid Arabic prefixes."""
    exact = word.startswith("=")
    if exact:
        word = word[1:]
    if not word:
        raise _PhraseSyntaxError("'=' must be followed by a word")
    if word == "*":
        return _WORD_CHAR + "+", None
    pieces = word.split("*")
    parts = []
    literal = ""
    for n, piece in enumerate(pieces):
        norm = _normalise_piece(piece)
        if piece and not norm:
            raise _PhraseSyntaxError(f"'{word}' has a part with no letters or digits: '{piece}'")
        literal += norm
        parts.append(re.escape(norm).replace("\\ ", " "))
        if n < len(pieces) - 1:
            parts.append(_WORD_CHAR + "*")
    if not literal:
        raise _PhraseSyntaxError(f"'{word}' has no letters or digits")
    body = "".join(parts)
    head = _normalise_piece(pieces[0])
    keys: _Keys = None
    if head:
        keys = _literal_keys(head)
    elif len(pieces) > 1 and pieces[1]:
        # "*word": the letters after the star can start anywhere inside a word.
        keys = frozenset(_INFIX + k for k in _literal_keys(_normalise_piece(pieces[1])))
    if not exact and head and _ARABIC_LETTER.match(head):
        body = _ARABIC_PREFIX + body
    return body, keys


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` characters outside brackets."""
    if "(" not in text:
        return text.split(sep)
    depth = 0
    out: list[list[str]] = [[]]
    for token in re.findall(r"[()]|" + re.escape(sep) + "|[^()" + re.escape(sep) + "]+", text):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        if token == sep and depth == 0:
            out.append([])
        else:
            out[-1].append(token)
    return ["".join(part) for part in out]


_ITEM_TOKEN = re.compile(r"[()]|[^\s()]+|\s+")


def _items(text: str) -> list[str]:
    """Whitespace-separated items of a sequence; a bracketed group is one item."""
    if "(" not in text and ")" not in text:
        return text.split()
    items: list[str] = []
    depth = 0
    cur: list[str] = []
    for token in _ITEM_TOKEN.findall(text):  # words, brackets and spaces, not letters
        if token == "(":
            if depth == 0 and cur:
                raise _PhraseSyntaxError(f"put a space between '{''.join(cur)}' and '('")
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0:
                raise _PhraseSyntaxError("')' without a matching '('")
        elif depth == 0 and token[0].isspace():
            if cur:
                items.append("".join(cur))
                cur = []
            continue
        cur.append(token)
    if depth:
        raise _PhraseSyntaxError("'(' without a matching ')'")
    if cur:
        items.append("".join(cur))
    return items


@functools.lru_cache(maxsize=16384)  # groups of words recur across phrases
def _sequence(text: str) -> tuple[str, _Keys]:
    """Words in order, one space apart; ``...``/``~N`` gaps and ``word?`` optional words."""
    items = _items(text)
    if not items:
        raise _PhraseSyntaxError("empty phrase or empty alternative")
    out = ""
    required_seen = False
    gap: int | None = None
    #: Optional words after a gap only widen it ("a ~3 (b)? c" reads as "a ~4 c").
    widened = False
    lead_keys: list[_Keys] = []
    for item in items:
        m = _GAP_RE.match(item)
        if item == "..." or m:
            if not required_seen:
                raise _PhraseSyntaxError(f"'{item}' must come after a word that is not optional")
            if gap is not None:
                raise _PhraseSyntaxError(f"two gaps in a row at '{item}'")
            gap = DOTS_GAP if m is None else int(m.group(1))
            if not 1 <= gap <= MAX_GAP:
                raise _PhraseSyntaxError(f"'{item}': a gap must be between ~1 and ~{MAX_GAP}")
            continue
        optional = item.endswith("?") and len(item) > 1
        if optional:
            item = item[:-1]
            if gap is not None:
                _item(item)  # still checked
                gap += _most_words(item)
                widened = True
                continue
        body, keys = _item(item)
        if not required_seen:
            lead_keys.append(keys)
            if optional:
                out += f"(?:{body} )?"
            else:
                out += body
                required_seen = True
            continue
        skip = "" if gap is None else f"(?:{_WORD_CHAR}+ ){{0,{gap}}}"
        gap, widened = None, False
        out += f"(?: {body})?" if optional else f" {skip}{body}"
    if gap is not None and not widened:
        raise _PhraseSyntaxError("a gap ('...' or '~N') must come between two words, not last")
    if not required_seen:
        raise _PhraseSyntaxError("a phrase needs at least one word that is not optional")
    return out, _union(lead_keys)


def _most_words(item: str) -> int:
    """The most words an item can match: 1 for a word, the longest alternative for a group."""
    if not item.startswith("("):
        return 1
    return max(len(_items(alt)) for alt in _split_top(item[1:-1], "|"))


@functools.lru_cache(maxsize=16384)  # groups of words recur across phrases
def _item(item: str) -> tuple[str, _Keys]:
    if item.startswith("("):
        if not item.endswith(")"):
            raise _PhraseSyntaxError(f"'{item}': put a space after ')'")
        alts = _split_top(item[1:-1], "|")
        if any(not a.strip() for a in alts):
            raise _PhraseSyntaxError(
                f"'{item}' has an empty alternative (use 'word?' for an optional word)"
            )
        compiled = [_sequence(a) for a in alts]
    else:
        if "(" in item or ")" in item:
            raise _PhraseSyntaxError(f"'{item}': brackets must be separated from words by spaces")
        alts = item.split("|")
        if any(not a for a in alts):
            raise _PhraseSyntaxError(f"'{item}' has an empty alternative")
        compiled = [_word(a) for a in alts]
    if len(compiled) == 1:
        return compiled[0]
    return "(?:" + "|".join(c[0] for c in compiled) + ")", _union([c[1] for c in compiled])


@functools.lru_cache(maxsize=16384)  # the editor page re-checks mostly unchanged rules
def _parse_phrase(phrase: str) -> tuple[str, _Keys]:
    """Check one phrase (or ``re:`` expression) and return its pattern source over normalised
    text and the first letters any match must start with. Raises _PhraseSyntaxError."""
    if phrase.startswith("re:"):
        source = phrase[3:].strip()
        if not source:
            raise _PhraseSyntaxError("'re:' needs an expression after it")
        try:
            inner = re.compile(source)
        except re.error as exc:
            raise _PhraseSyntaxError(f"not a valid regular expression: {exc}") from None
        if inner.search("") is not None:
            raise _PhraseSyntaxError("the expression matches empty text, so it matches anything")
        body, keys = f"(?:{source})", None
    else:
        if not phrase.strip():
            raise _PhraseSyntaxError("empty phrase")
        if "\n" in phrase:
            raise _PhraseSyntaxError("a phrase must fit on one line")
        body, keys = _sequence(phrase.strip())
    source = f"(?<!{_WORD_CHAR})(?:{body})(?!{_WORD_CHAR})"
    if keys is None and not phrase.startswith("re:") and re.fullmatch(source, "zqxj"):
        # Only a phrase whose first letters are unknown ("*", "*word") can match anything.
        raise _PhraseSyntaxError("the phrase matches any word at all; it needs some letters")
    return source, keys


@functools.lru_cache(maxsize=16384)
def _compile_phrase(phrase: str) -> re.Pattern[str]:
    """The compiled pattern of a phrase already checked by :func:`_parse_phrase`.

    Compiling is most of the cost of loading the rules, so it waits until a comment
    holds a word the phrase could start with.
    """
    return re.compile(_parse_phrase(phrase)[0])


_PHRASE_TOKEN = re.compile(r"[^\s()|]+")
#: An anchor word that a set lookup can find: Latin letters only, nothing optional or starred.
_PLAIN_WORD = re.compile(r"^[a-z]+$")
def _words_of(phrase: str) -> tuple[set[str], set[str]]:
    """The whole words and the word beginnings (``neglect*``) a phrase is written with,
    normalised: what the speller may read a misspelt word as."""
    words: set[str] = set()
    stems: set[str] = set()
    if phrase.startswith("re:"):
        return words, stems
    for token in _PHRASE_TOKEN.findall(phrase):
        token = token.rstrip("?").lstrip("=")
        if token == "..." or _GAP_RE.match(token) or not token:
            continue
        star = token.find("*")
        if star < 0:
            norm = normalise(token)
            if " " not in norm:
                words.add(norm)
        elif star > 0 and token.count("*") == 1 and token.endswith("*"):
            stems.add(normalise(token[:-1]))
    return words, stems


# --- rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Phrase:
    """One phrase of a rule, as the safety officer wrote it."""

    language: str
    text: str
    #: The first letters any match must start with (None: unknown), for the lookup index.
    keys: frozenset[str] | None = field(default=None, compare=False, repr=False, hash=False)

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        return _compile_phrase(self.text)


def _grouped(phrases: tuple[Phrase, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in phrases:
        out.setdefault(p.language, []).append(p.text)
    return out


@dataclass(frozen=True)
class Rule:
    """One rule of ``safety_rules.json``: phrases that flag a comment, and exclusions."""

    id: str
    category: str
    description: str
    phrases: tuple[Phrase, ...]
    exclusions: tuple[Phrase, ...] = ()
    notes: str = ""
    #: ``urgent`` or ``review``.
    level: str = Level.URGENT.value
    #: Anchor ids: a phrase counts only within ``window`` words of one of them.
    near: tuple[str, ...] = ()
    #: None: :data:`DEFAULT_WINDOW`.
    window: int | None = None
    #: Anchor ids that make a review rule's match urgent when the comment holds one
    #: anywhere ("right now", "please send someone", "I've rung 999").
    urgent_if: tuple[str, ...] = ()

    @property
    def words_apart(self) -> int:
        return DEFAULT_WINDOW if self.window is None else self.window

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "category": self.category,
            "description": self.description,
        }
        if self.level != Level.URGENT:
            data["level"] = self.level
        if self.near:
            data["near"] = list(self.near)
        if self.window is not None:
            data["window"] = self.window
        if self.urgent_if:
            data["urgent_if"] = list(self.urgent_if)
        if self.notes:
            data["notes"] = self.notes
        data["phrases"] = _grouped(self.phrases)
        if self.exclusions:
            data["exclusions"] = _grouped(self.exclusions)
        return data


@dataclass(frozen=True)
class Anchor:
    """Words that place a rule's phrase: a person, a body, a time span, a place..."""

    id: str
    description: str
    phrases: tuple[Phrase, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description,
                "phrases": _grouped(self.phrases)}

    @functools.cached_property
    def _parts(self) -> tuple[frozenset[str], _Index | None]:
        """Its plain Latin words as a set (a lookup per word of the text), and its other
        phrases (several words, stars, Arabic with its joined prefixes) filed like the
        rules' phrases, each compiled only when a text could hold it."""
        plain: set[str] = set()
        other: list[Phrase] = []
        for phrase in self.phrases:
            words = phrase.text.split("|")
            if all(_PLAIN_WORD.match(w) for w in words):
                plain.update(_normalise_piece(w) for w in words)
            else:
                other.append(phrase)
        return frozenset(plain), _Index([other]) if other else None

    def spans(self, norm: str, words: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Where it is in ``norm`` (a normalised text whose word spans are ``words``)."""
        plain, index = self._parts
        found = [(a, b) for a, b in words if norm[a:b] in plain]
        if index is not None:
            for a, b in words:
                found += [(m.start(), m.end()) for _entry, m in index.matches_at(norm, a, b)]
            for entry in index.always:
                found += [(m.start(), m.end()) for m in entry.phrase.pattern.finditer(norm)]
        return found


@dataclass(frozen=True)
class Match:
    """A phrase that fired. ``start``/``end`` index the ORIGINAL text; ``text`` is that slice."""

    rule: str
    category: str
    phrase: str
    start: int
    end: int
    text: str
    level: str = Level.URGENT.value
    #: For an anchored rule: the anchor that placed it, and what it matched.
    anchor: str | None = None
    anchor_text: str | None = None


@dataclass(frozen=True)
class SafetyResult:
    #: The highest level of the rules that fired; ``none`` when none did.
    level: str
    #: The id of the first rule (in file order) of that level; None when none fired.
    reason: str | None
    category: str | None
    matches: tuple[Match, ...]
    #: Misspelt words read as rule words (they may or may not be part of a match).
    corrections: tuple[Correction, ...] = ()

    @property
    def urgent(self) -> bool:
        return self.level == Level.URGENT

    @property
    def flagged(self) -> bool:
        """Urgent or review: a person must read it."""
        return self.level != Level.NONE


_NOTHING = SafetyResult(level=Level.NONE.value, reason=None, category=None, matches=())


def _phrase_problems(where: str, value: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """Check a ``{"en": [...], ...}`` mapping; returns problems and (language, phrase) pairs."""
    problems: list[str] = []
    pairs: list[tuple[str, str]] = []
    if not isinstance(value, dict):
        return [f"{where} must be an object of language -> list of phrases"], pairs
    for lang, phrases in value.items():
        if not isinstance(lang, str) or not _LANG_RE.match(lang):
            problems.append(f"{where}: '{lang}' is not a language code such as 'en', 'es' or 'ar'")
            continue
        if not isinstance(phrases, list):
            problems.append(f"{where}.{lang} must be a list of phrases")
            continue
        seen: set[str] = set()
        for n, phrase in enumerate(phrases):
            label = f"{where}.{lang}[{n}]"
            if not isinstance(phrase, str):
                problems.append(f"{label} must be text, not {type(phrase).__name__}")
                continue
            try:
                _parse_phrase(phrase)
            except _PhraseSyntaxError as exc:
                problems.append(f"{label} '{phrase}': {exc}")
                continue
            if phrase in seen:
                problems.append(f"{label} '{phrase}' appears twice")
                continue
            seen.add(phrase)
            pairs.append((lang, phrase))
    return problems, pairs


def _required_phrases(where: str, entry: dict[str, Any]) -> list[str]:
    """Problems with the ``phrases`` a rule or an anchor must have."""
    if "phrases" not in entry:
        return [f"{where}: 'phrases' is missing"]
    found, pairs = _phrase_problems(f"{where} phrases", entry["phrases"])
    if not found and not pairs:
        return [f"{where}: has no phrases"]
    return found


def _anchor_problems(anchors: Any) -> tuple[list[str], set[str]]:
    """Problems with the ``anchors`` list, and the anchor ids it defines."""
    if not isinstance(anchors, list):
        return ["'anchors' must be a list"], set()
    problems: list[str] = []
    ids: set[str] = set()
    for n, anchor in enumerate(anchors, start=1):
        if not isinstance(anchor, dict):
            problems.append(f"anchor {n} must be an object")
            continue
        aid = anchor.get("id")
        where = f"anchor {n} ('{aid}')" if isinstance(aid, str) and aid else f"anchor {n}"
        for key in anchor:
            if key not in _ANCHOR_KEYS:
                problems.append(f"{where}: unknown key '{key}' (allowed: "
                                f"{', '.join(sorted(_ANCHOR_KEYS))})")
        if not isinstance(aid, str) or not _ID_RE.match(aid):
            problems.append(f"{where}: 'id' must be lower-case letters, digits, '-' or '_' "
                            "(e.g. 'person')")
        elif aid in ids:
            problems.append(f"{where}: the id '{aid}' is used by an earlier anchor")
        else:
            ids.add(aid)
        desc = anchor.get("description")
        if not isinstance(desc, str) or not desc.strip():
            problems.append(f"{where}: 'description' must say what the anchor is")
        problems.extend(_required_phrases(where, anchor))
    return problems, ids


def _rule_problems(where: str, rule: dict[str, Any], anchor_ids: set[str]) -> list[str]:
    """Problems with one rule's level, anchors and phrases (its id is checked by the caller)."""
    problems: list[str] = []
    for key in rule:
        if key not in _RULE_KEYS:
            problems.append(
                f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(_RULE_KEYS))})"
            )
    if rule.get("category") not in CATEGORIES:
        problems.append(
            f"{where}: 'category' is {rule.get('category')!r}; it must be one of "
            + ", ".join(CATEGORIES)
        )
    if "level" in rule and rule["level"] not in RULE_LEVELS:
        problems.append(f"{where}: 'level' is {rule['level']!r}; it must be "
                        + " or ".join(RULE_LEVELS))
    for key in ("near", "urgent_if"):
        if key not in rule:
            continue
        ids = rule[key]
        if not isinstance(ids, list) or not ids or not all(isinstance(a, str) for a in ids):
            problems.append(f"{where}: '{key}' must be a list of anchor ids, e.g. [\"person\"]")
            continue
        for aid in ids:
            if aid not in anchor_ids:
                known = ", ".join(sorted(anchor_ids)) or "none are defined"
                problems.append(f"{where}: '{key}' names the anchor '{aid}', which is not "
                                f"in 'anchors' ({known})")
    if "urgent_if" in rule and rule.get("level") != Level.REVIEW:
        problems.append(f"{where}: 'urgent_if' only means something for a review rule")
    if "window" in rule:
        window = rule["window"]
        if "near" not in rule:
            problems.append(f"{where}: 'window' only means something with 'near'")
        if not isinstance(window, int) or isinstance(window, bool) \
                or not 1 <= window <= MAX_WINDOW:
            problems.append(f"{where}: 'window' must be a whole number of words from 1 to "
                            f"{MAX_WINDOW}")
    desc = rule.get("description")
    if not isinstance(desc, str) or not desc.strip():
        problems.append(f"{where}: 'description' must say what the rule is for")
    if "notes" in rule and not isinstance(rule["notes"], str):
        problems.append(f"{where}: 'notes' must be text")
    problems.extend(_required_phrases(where, rule))
    if "exclusions" in rule:
        problems.extend(_phrase_problems(f"{where} exclusions", rule["exclusions"])[0])
    return problems


def validate_rules(data: Any) -> list[str]:
    """Every problem with ``data`` (parsed JSON), worded for the safety officer; [] if none."""
    problems: list[str] = []
    if not isinstance(data, dict):
        return ["the rules file must be a JSON object with 'version' and 'rules'"]
    for key in data:
        if key not in _TOP_KEYS:
            allowed = ", ".join(sorted(_TOP_KEYS))
            problems.append(f"unknown top-level key '{key}' (allowed: {allowed})")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        problems.append("'version' must be non-empty text, e.g. \"2026-12-01\"")
    if "notes" in data and not isinstance(data["notes"], str):
        problems.append("'notes' must be text")
    anchor_ids: set[str] = set()
    if "anchors" in data:
        found, anchor_ids = _anchor_problems(data["anchors"])
        problems.extend(found)
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        problems.append("'rules' must be a non-empty list")
        return problems
    ids: set[str] = set()
    for n, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            problems.append(f"rule {n} must be an object")
            continue
        rid = rule.get("id")
        where = f"rule {n} ('{rid}')" if isinstance(rid, str) and rid else f"rule {n}"
        if not isinstance(rid, str) or not _ID_RE.match(rid):
            problems.append(
                f"{where}: 'id' must be lower-case letters, digits, '-' or '_' (e.g. 'self-harm')"
            )
        elif rid in ids:
            problems.append(f"{where}: the id '{rid}' is used by an earlier rule")
        else:
            ids.add(rid)
        problems.extend(_rule_problems(where, rule, anchor_ids))
    return problems


def _phrases(pairs: Mapping[str, Any]) -> tuple[Phrase, ...]:
    return tuple(
        Phrase(lang, text, _parse_phrase(text)[1])
        for lang, texts in pairs.items()
        for text in texts
    )


# --- candidate index -------------------------------------------------------------------
# Trying every phrase at every word would cost hundreds of regex attempts per word.
# Each phrase is filed under the letters its match must begin with; a word of the
# text only tries the phrases filed under its own first letters.


@dataclass(frozen=True)
class _Entry:
    rule_index: int
    phrase: Phrase


class _Index:
    """Phrases filed by first letters; ``groups[n]`` are filed with ``rule_index`` n."""

    def __init__(self, groups: Iterable[Iterable[Phrase]]) -> None:
        self.by_start: dict[str, list[_Entry]] = {}
        self.by_infix: dict[str, list[_Entry]] = {}
        self.always: list[_Entry] = []
        for n, phrases in enumerate(groups):
            for phrase in phrases:
                entry = _Entry(n, phrase)
                if phrase.keys is None:
                    self.always.append(entry)
                    continue
                for key in phrase.keys:
                    if key.startswith(_INFIX):
                        self.by_infix.setdefault(key[1:], []).append(entry)
                    else:
                        self.by_start.setdefault(key, []).append(entry)

    def candidates(self, norm: str, start: int, end: int) -> list[_Entry]:
        """Phrases that might match at ``start``, the first letter of a word ending at ``end``."""
        found: list[_Entry] = []
        seen: set[str] = set()
        # Arabic words may carry up to four letters of clitics before the filed letters.
        last = start + 5 if _ARABIC_LETTER.match(norm, start) else start + 1
        for s in range(start, min(last, end)):
            for k in range(1, _KEY_LEN + 1):
                key = norm[s : min(s + k, end)]
                if key not in seen:
                    seen.add(key)
                    found.extend(self.by_start.get(key, ()))
        if self.by_infix:
            seen.clear()
            for s in range(start, end):
                for k in range(1, _KEY_LEN + 1):
                    key = norm[s : min(s + k, end)]
                    if key not in seen:
                        seen.add(key)
                        found.extend(self.by_infix.get(key, ()))
        return found

    def matches_at(self, norm: str, start: int, end: int) -> Iterator[tuple[_Entry, re.Match[str]]]:
        """The phrases that match at ``start``, the first letter of a word ending at ``end``
        (each compiled the first time a word could start it)."""
        tried: set[int] = set()
        for entry in self.candidates(norm, start, end):
            if id(entry) in tried:
                continue
            tried.add(id(entry))
            m = entry.phrase.pattern.match(norm, start)
            if m is not None:
                yield entry, m


# --- the rule set ----------------------------------------------------------------------

_Span = tuple[int, int, Phrase]
_WORD_RE = re.compile(r"[^ ]+")
#: The key under which a check keeps its text's word spans beside the anchors it found.
_WORD_SPANS = " words"


class _Words:
    """Word numbers of positions in a normalised text (words are one space apart)."""

    def __init__(self, norm: str) -> None:
        self.spaces = [i for i, ch in enumerate(norm) if ch == " "]

    def of(self, pos: int) -> int:
        return bisect.bisect_left(self.spaces, pos)

    def apart(self, a: tuple[int, int], b: tuple[int, int]) -> int:
        """Words standing between spans ``a`` and ``b`` (0 when they touch or overlap)."""
        if a[0] > b[0]:
            a, b = b, a
        if b[0] < a[1]:
            return 0
        return max(self.of(b[0]) - self.of(a[1] - 1) - 1, 0)


@dataclass(frozen=True)
class SafetyRules:
    """A validated rule set, compiled as comments need it; build with ``from_dict``."""

    version: str
    rules: tuple[Rule, ...]
    notes: str = ""
    anchors: tuple[Anchor, ...] = ()
    _index: _Index = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _Index(r.phrases for r in self.rules))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SafetyRules:
        problems = validate_rules(data)
        if problems:
            raise RuleError(problems)
        anchors = tuple(
            Anchor(id=a["id"], description=a["description"], phrases=_phrases(a["phrases"]))
            for a in data.get("anchors", [])
        )
        rules = tuple(
            Rule(
                id=r["id"],
                category=r["category"],
                description=r["description"],
                phrases=_phrases(r["phrases"]),
                exclusions=_phrases(r.get("exclusions", {})),
                notes=r.get("notes", ""),
                level=r.get("level", Level.URGENT.value),
                near=tuple(r.get("near", ())),
                window=r.get("window"),
                urgent_if=tuple(r.get("urgent_if", ())),
            )
            for r in data["rules"]
        )
        return cls(version=data["version"], rules=rules, notes=data.get("notes", ""),
                   anchors=anchors)

    @classmethod
    def from_json(cls, text: str) -> SafetyRules:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuleError(
                [f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]
            ) from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": self.version}
        if self.notes:
            data["notes"] = self.notes
        if self.anchors:
            data["anchors"] = [a.to_dict() for a in self.anchors]
        data["rules"] = [r.to_dict() for r in self.rules]
        return data

    @functools.cached_property
    def speller(self) -> Speller:
        """Reads misspelt words as the words the rules' phrases use (not the anchors')."""
        words: set[str] = set()
        stems: set[str] = set()
        for rule in self.rules:
            for phrase in rule.phrases:
                w, s = _words_of(phrase.text)
                words |= w
                stems |= s
        return Speller(words, stems)

    @functools.cached_property
    def _anchors_by_id(self) -> dict[str, Anchor]:
        return {a.id: a for a in self.anchors}

    def check(self, text: str, language: str | None = None) -> SafetyResult:
        """The comment's level (``urgent``, ``review`` or ``none``) and every phrase that fired.

        ``language`` is accepted as a hint only: every language's phrases are checked.
        """
        del language  # a wrong or missing language must not hide a match
        if not text:
            return _NOTHING
        norm, index = _normalise_map(text)
        if not norm:
            return _NOTHING
        norm, index, corrections = self.speller.correct(norm, index)
        hits: dict[int, list[_Span]] = {}
        pos = 0
        length = len(norm)
        matches_at = self._index.matches_at
        while pos < length:
            word_end = norm.find(" ", pos)
            if word_end < 0:
                word_end = length
            for entry, m in matches_at(norm, pos, word_end):
                hits.setdefault(entry.rule_index, []).append((m.start(), m.end(), entry.phrase))
            pos = word_end + 1
        for entry in self._index.always:
            for m in entry.phrase.pattern.finditer(norm):
                hits.setdefault(entry.rule_index, []).append((m.start(), m.end(), entry.phrase))
        if not hits:
            return SafetyResult(Level.NONE.value, None, None, (), tuple(corrections))
        return self._result(text, norm, index, hits, tuple(corrections))

    def _result(self, text: str, norm: str, index: list[int], hits: dict[int, list[_Span]],
                corrections: tuple[Correction, ...]) -> SafetyResult:
        matches: list[Match] = []
        best: tuple[Rule, str] | None = None
        words: _Words | None = None
        anchor_spans: dict[str, list[tuple[int, int]]] = {}

        def original(s: int, e: int) -> tuple[int, int]:
            start = index[s]
            end = index[e - 1] + 1
            while end < len(text) and _dropped(text[end]):
                end += 1  # trailing combining marks belong to the last letter
            return start, end

        for rule_index in sorted(hits):
            rule = self.rules[rule_index]
            kept = self._without_exclusions(rule, norm, hits[rule_index])
            placed: list[tuple[_Span, str | None, tuple[int, int] | None]] = []
            for span in kept:
                if not rule.near:
                    placed.append((span, None, None))
                    continue
                if words is None:
                    words = _Words(norm)
                near = self._nearest_anchor(rule, span, norm, words, anchor_spans)
                if near is not None:
                    placed.append((span, *near))
            if not placed:
                continue
            level = rule.level
            if rule.urgent_if and any(self._anchor_spans(a, norm, anchor_spans)
                                      for a in rule.urgent_if):
                level = Level.URGENT.value  # a concern happening now
            if best is None or Level(level).rank > Level(best[1]).rank:
                best = (rule, level)
            for (s, e, phrase), anchor, anchor_at in placed:
                start, end = original(s, e)
                anchor_text = None
                if anchor_at is not None:
                    a_start, a_end = original(*anchor_at)
                    anchor_text = text[a_start:a_end]
                matches.append(Match(rule.id, rule.category, phrase.text, start, end,
                                     text[start:end], level, anchor, anchor_text))
        if best is None:
            return SafetyResult(Level.NONE.value, None, None, (), corrections)
        matches.sort(key=lambda m: (m.start, -m.end))
        rule, level = best
        return SafetyResult(level=level, reason=rule.id, category=rule.category,
                            matches=tuple(matches), corrections=corrections)

    def _anchor_spans(self, anchor_id: str, norm: str,
                      cache: dict[str, list[tuple[int, int]]]) -> list[tuple[int, int]]:
        spans = cache.get(anchor_id)
        if spans is None:
            words = cache.get(_WORD_SPANS)
            if words is None:
                words = cache[_WORD_SPANS] = [(m.start(), m.end())
                                              for m in _WORD_RE.finditer(norm)]
            spans = self._anchors_by_id[anchor_id].spans(norm, words)
            cache[anchor_id] = spans
        return spans

    def _nearest_anchor(self, rule: Rule, span: _Span, norm: str, words: _Words,
                        cache: dict[str, list[tuple[int, int]]]
                        ) -> tuple[str, tuple[int, int]] | None:
        """The closest anchor of the rule's kinds within its window of ``span``, if any."""
        best: tuple[int, str, tuple[int, int]] | None = None
        for anchor_id in rule.near:
            for at in self._anchor_spans(anchor_id, norm, cache):
                apart = words.apart((span[0], span[1]), at)
                if apart <= rule.words_apart and (best is None or apart < best[0]):
                    best = (apart, anchor_id, at)
        return None if best is None else (best[1], best[2])

    @staticmethod
    def _without_exclusions(rule: Rule, norm: str, spans: list[_Span]) -> list[_Span]:
        """Drop matches lying wholly inside an exclusion match, and matches inside a longer one."""
        if rule.exclusions:
            excluded = [
                (m.start(), m.end()) for ex in rule.exclusions for m in ex.pattern.finditer(norm)
            ]
            spans = [sp for sp in spans if not any(a <= sp[0] and sp[1] <= b for a, b in excluded)]
        spans.sort(key=lambda sp: (sp[0], -sp[1]))
        kept: list[_Span] = []
        for sp in spans:
            if kept and sp[0] >= kept[-1][0] and sp[1] <= kept[-1][1]:
                continue
            kept.append(sp)
        return kept


@functools.cache
def default_rules() -> SafetyRules:
    """The shipped rules (``data/safety_rules.json``), parsed once per process."""
    return SafetyRules.from_json(_DATA.read_text(encoding="utf-8"))
