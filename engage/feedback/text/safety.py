"""Urgent-comment detection: phrase rules a clinical safety officer edits, no model involved.

The rules live in ``data/safety_rules.json`` (format and phrase syntax in
``docs/safety-rules.md``). Every text is checked against every language's
phrases, because comments mix languages and the declared language can be wrong.
Matching runs over a normalised copy of the text (case-folded, accents and Arabic
diacritics stripped, Arabic letter variants unified, punctuation turned into
single spaces) and reports offsets into the original text through an index map,
so the app can highlight exactly what fired.

Missing an urgent comment is far worse than a false alarm: negated and hedged
phrasings ("I'm not suicidal, but...") match on purpose, so that a person reads them.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CATEGORIES",
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

CATEGORIES = ("self-harm", "abuse", "neglect", "safeguarding", "danger")

_DATA = Path(__file__).parent / "data" / "safety_rules.json"
_RULE_KEYS = {"id", "category", "description", "phrases", "exclusions", "notes"}
_TOP_KEYS = {"version", "rules", "notes"}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_LANG_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
#: ``...`` lets this many words stand between its neighbours.
DOTS_GAP = 3
#: The widest ``~N`` gap a phrase may ask for.
MAX_GAP = 10


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
    return _normalise_map(text)[0]


def _dropped(ch: str) -> bool:
    return _fold_char(ch) == "" and ch not in _APOSTROPHES


# --- phrase syntax -------------------------------------------------------------------

_ARABIC_LETTER = re.compile(r"[\u0621-\u064a\u0671-\u06d3]")
# Clitics written joined to an Arabic word: "and", "so", "with", "for", "like",
# future "will", and the article. "الموت" then also matches "والموت" and "بالموت".
_ARABIC_PREFIX = "(?:[وف])?(?:[بكل]?ال|لل|[بكلس])?"
_WORD_CHAR = "[^ ]"
_GAP_RE = re.compile(r"^~(\d+)$")
_KEY_LEN = 2
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
        norm = normalise(piece)
        if piece and not norm:
            raise _PhraseSyntaxError(f"'{word}' has a part with no letters or digits: '{piece}'")
        literal += norm
        parts.append(re.escape(norm).replace("\\ ", " "))
        if n < len(pieces) - 1:
            parts.append(_WORD_CHAR + "*")
    if not literal:
        raise _PhraseSyntaxError(f"'{word}' has no letters or digits")
    body = "".join(parts)
    head = normalise(pieces[0])
    keys: _Keys = None
    if head:
        keys = _literal_keys(head)
    elif len(pieces) > 1 and pieces[1]:
        # "*word": the letters after the star can start anywhere inside a word.
        keys = frozenset(_INFIX + k for k in _literal_keys(normalise(pieces[1])))
    if not exact and head and _ARABIC_LETTER.match(head):
        body = _ARABIC_PREFIX + body
    return body, keys


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` characters outside brackets."""
    depth = 0
    out = [""]
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("")
        else:
            out[-1] += ch
    return out


def _items(text: str) -> list[str]:
    """Whitespace-separated items of a sequence; a bracketed group is one item."""
    items: list[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == "(":
            if depth == 0 and cur:
                raise _PhraseSyntaxError(f"put a space between '{cur}' and '('")
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _PhraseSyntaxError("')' without a matching '('")
        if ch.isspace() and depth == 0:
            if cur:
                items.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise _PhraseSyntaxError("'(' without a matching ')'")
    if cur:
        items.append(cur)
    return items


def _sequence(text: str) -> tuple[str, _Keys]:
    """Words in order, one space apart; ``...``/``~N`` gaps and ``word?`` optional words."""
    items = _items(text)
    if not items:
        raise _PhraseSyntaxError("empty phrase or empty alternative")
    out = ""
    required_seen = False
    gap: int | None = None
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
                raise _PhraseSyntaxError(f"an optional word ('{item}?') cannot follow a gap")
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
        gap = None
        out += f"(?: {body})?" if optional else f" {skip}{body}"
    if gap is not None:
        raise _PhraseSyntaxError("a gap ('...' or '~N') must come between two words, not last")
    if not required_seen:
        raise _PhraseSyntaxError("a phrase needs at least one word that is not optional")
    return out, _union(lead_keys)


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


@functools.lru_cache(maxsize=8192)  # the editor page re-checks mostly unchanged rules
def _compile_phrase(phrase: str) -> tuple[re.Pattern[str], _Keys]:
    """Compile one phrase (or ``re:`` expression) to a pattern over normalised text."""
    keys: _Keys = None
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
        body = f"(?:{source})"
    else:
        if not phrase.strip():
            raise _PhraseSyntaxError("empty phrase")
        if "\n" in phrase:
            raise _PhraseSyntaxError("a phrase must fit on one line")
        body, keys = _sequence(phrase.strip())
    pattern = re.compile(f"(?<!{_WORD_CHAR})(?:{body})(?!{_WORD_CHAR})")
    if not phrase.startswith("re:") and pattern.fullmatch("zqxj") is not None:
        raise _PhraseSyntaxError("the phrase matches any word at all; it needs some letters")
    return pattern, keys


# --- rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Phrase:
    """One phrase of a rule, as the safety officer wrote it, with its compiled pattern."""

    language: str
    text: str
    pattern: re.Pattern[str] = field(compare=False, repr=False, hash=False)
    #: The first letters any match must start with (None: unknown), for the lookup index.
    keys: frozenset[str] | None = field(default=None, compare=False, repr=False, hash=False)


@dataclass(frozen=True)
class Rule:
    """One rule of ``safety_rules.json``: phrases that make a comment urgent, and exclusions."""

    id: str
    category: str
    description: str
    phrases: tuple[Phrase, ...]
    exclusions: tuple[Phrase, ...] = ()
    notes: str = ""

    def _grouped(self, phrases: tuple[Phrase, ...]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for p in phrases:
            out.setdefault(p.language, []).append(p.text)
        return out

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "category": self.category,
            "description": self.description,
        }
        if self.notes:
            data["notes"] = self.notes
        data["phrases"] = self._grouped(self.phrases)
        if self.exclusions:
            data["exclusions"] = self._grouped(self.exclusions)
        return data


@dataclass(frozen=True)
class Match:
    """A phrase that fired. ``start``/``end`` index the ORIGINAL text; ``text`` is that slice."""

    rule: str
    category: str
    phrase: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class SafetyResult:
    urgent: bool
    #: The id of the first rule (in file order) that fired; None when not urgent.
    reason: str | None
    category: str | None
    matches: tuple[Match, ...]


_NOT_URGENT = SafetyResult(urgent=False, reason=None, category=None, matches=())


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
                _compile_phrase(phrase)
            except _PhraseSyntaxError as exc:
                problems.append(f"{label} '{phrase}': {exc}")
                continue
            if phrase in seen:
                problems.append(f"{label} '{phrase}' appears twice")
                continue
            seen.add(phrase)
            pairs.append((lang, phrase))
    return problems, pairs


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
        for key in rule:
            if key not in _RULE_KEYS:
                problems.append(
                    f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(_RULE_KEYS))})"
                )
        if not isinstance(rid, str) or not _ID_RE.match(rid):
            problems.append(
                f"{where}: 'id' must be lower-case letters, digits, '-' or '_' (e.g. 'self-harm')"
            )
        elif rid in ids:
            problems.append(f"{where}: the id '{rid}' is used by an earlier rule")
        else:
            ids.add(rid)
        if rule.get("category") not in CATEGORIES:
            problems.append(
                f"{where}: 'category' is {rule.get('category')!r}; it must be one of "
                + ", ".join(CATEGORIES)
            )
        desc = rule.get("description")
        if not isinstance(desc, str) or not desc.strip():
            problems.append(f"{where}: 'description' must say what the rule is for")
        if "notes" in rule and not isinstance(rule["notes"], str):
            problems.append(f"{where}: 'notes' must be text")
        if "phrases" not in rule:
            problems.append(f"{where}: 'phrases' is missing")
        else:
            found, pairs = _phrase_problems(f"{where} phrases", rule["phrases"])
            problems.extend(found)
            if not found and not pairs:
                problems.append(f"{where}: has no phrases")
        if "exclusions" in rule:
            problems.extend(_phrase_problems(f"{where} exclusions", rule["exclusions"])[0])
    return problems


def _compile_all(pairs: Mapping[str, Any]) -> tuple[Phrase, ...]:
    return tuple(
        Phrase(lang, text, *_compile_phrase(text))
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
    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.by_start: dict[str, list[_Entry]] = {}
        self.by_infix: dict[str, list[_Entry]] = {}
        self.always: list[_Entry] = []
        for n, rule in enumerate(rules):
            for phrase in rule.phrases:
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
            for key in (norm[s : s + _KEY_LEN], norm[s]):
                if key not in seen:
                    seen.add(key)
                    found.extend(self.by_start.get(key, ()))
        if self.by_infix:
            seen.clear()
            for s in range(start, end):
                for key in (norm[s : s + _KEY_LEN], norm[s]):
                    if key not in seen:
                        seen.add(key)
                        found.extend(self.by_infix.get(key, ()))
        return found


# --- the rule set ----------------------------------------------------------------------


@dataclass(frozen=True)
class SafetyRules:
    """A validated, compiled rule set. Build with ``from_dict``/``from_json``."""

    version: str
    rules: tuple[Rule, ...]
    notes: str = ""
    _index: _Index = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _Index(self.rules))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SafetyRules:
        problems = validate_rules(data)
        if problems:
            raise RuleError(problems)
        rules = tuple(
            Rule(
                id=r["id"],
                category=r["category"],
                description=r["description"],
                phrases=_compile_all(r["phrases"]),
                exclusions=_compile_all(r.get("exclusions", {})),
                notes=r.get("notes", ""),
            )
            for r in data["rules"]
        )
        return cls(version=data["version"], rules=rules, notes=data.get("notes", ""))

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
        data["rules"] = [r.to_dict() for r in self.rules]
        return data

    def check(self, text: str, language: str | None = None) -> SafetyResult:
        """Whether ``text`` is urgent, and every phrase that fired.

        ``language`` is accepted as a hint only: every language's phrases are checked.
        """
        del language  # a wrong or missing language must not hide a match
        if not text:
            return _NOT_URGENT
        norm, index = _normalise_map(text)
        if not norm:
            return _NOT_URGENT
        hits: dict[int, list[tuple[int, int, Phrase]]] = {}
        pos = 0
        length = len(norm)
        candidates = self._index.candidates
        while pos < length:
            word_end = norm.find(" ", pos)
            if word_end < 0:
                word_end = length
            tried: set[int] = set()
            for entry in candidates(norm, pos, word_end):
                if id(entry) in tried:
                    continue
                tried.add(id(entry))
                m = entry.phrase.pattern.match(norm, pos)
                if m is not None:
                    hits.setdefault(entry.rule_index, []).append((m.start(), m.end(), entry.phrase))
            pos = word_end + 1
        for entry in self._index.always:
            for m in entry.phrase.pattern.finditer(norm):
                hits.setdefault(entry.rule_index, []).append((m.start(), m.end(), entry.phrase))
        if not hits:
            return _NOT_URGENT
        matches: list[Match] = []
        first_rule: Rule | None = None
        for rule_index in sorted(hits):
            rule = self.rules[rule_index]
            kept = self._without_exclusions(rule, norm, hits[rule_index])
            if not kept:
                continue
            if first_rule is None:
                first_rule = rule
            for s, e, phrase in kept:
                start = index[s]
                end = index[e - 1] + 1
                while end < len(text) and _dropped(text[end]):
                    end += 1  # trailing combining marks belong to the last letter
                matches.append(
                    Match(rule.id, rule.category, phrase.text, start, end, text[start:end])
                )
        if first_rule is None:
            return _NOT_URGENT
        matches.sort(key=lambda m: (m.start, -m.end))
        return SafetyResult(
            urgent=True, reason=first_rule.id, category=first_rule.category, matches=tuple(matches)
        )

    @staticmethod
    def _without_exclusions(
        rule: Rule, norm: str, spans: list[tuple[int, int, Phrase]]
    ) -> list[tuple[int, int, Phrase]]:
        """Drop matches lying wholly inside an exclusion match, and matches inside a longer one."""
        if rule.exclusions:
            excluded = [
                (m.start(), m.end()) for ex in rule.exclusions for m in ex.pattern.finditer(norm)
            ]
            spans = [sp for sp in spans if not any(a <= sp[0] and sp[1] <= b for a, b in excluded)]
        spans.sort(key=lambda sp: (sp[0], -sp[1]))
        kept: list[tuple[int, int, Phrase]] = []
        for sp in spans:
            if kept and sp[0] >= kept[-1][0] and sp[1] <= kept[-1][1]:
                continue
            kept.append(sp)
        return kept


@functools.cache
def default_rules() -> SafetyRules:
    """The shipped rules (``data/safety_rules.json``), parsed once per process."""
    return SafetyRules.from_json(_DATA.read_text(encoding="utf-8"))
