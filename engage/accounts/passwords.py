"""The password rules, in one place: every way of setting a password checks them here.

A password is refused when it is shorter than :data:`MIN_LENGTH` or longer than
:data:`MAX_LENGTH`, when it is too like the user's email address or name (Django's
measure: a similarity of 0.7 or more to the address, its parts or the name's words), or
when it is one of 20,000 common passwords (``data/common-passwords.txt.gz``, from Django;
see ``data/NOTICE.md``). The list is compared case-insensitively and read once, at first
need.
"""

from __future__ import annotations

import gzip
import re
from difflib import SequenceMatcher
from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

MIN_LENGTH = 12
#: Long enough for any passphrase or password manager; short enough that hashing a posted
#: megabyte cannot be used to load the server.
MAX_LENGTH = 128
COMMON_PASSWORDS = Path(__file__).with_name("data") / "common-passwords.txt.gz"
#: How alike (difflib's ratio) a password may be to the user's email or name: the default
#: of Django's ``UserAttributeSimilarityValidator``, with the exact ratio rather than its
#: letter-count bound, which refuses any reordering of the address ("engage-demo-admin" for
#: admin@engage.demo). "jane.doe2024" is refused for jane.doe@….
MAX_SIMILARITY = 0.7


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lower-case (about 20,000 entries; read once per process)."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


def is_common(password: str) -> bool:
    return password.lower() in common_passwords()


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why ``password`` may not be used, as a translated sentence; None when it may."""
    if len(password) < MIN_LENGTH:
        return ngettext("Use at least %(num)d character.", "Use at least %(num)d characters.",
                        MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return ngettext("Use at most %(num)d character.", "Use at most %(num)d characters.",
                        MAX_LENGTH)
    if too_similar(password, email, name):
        return str(_l("Do not use your name or email address in your password."))
    if is_common(password):
        return str(_l("This password is too common: it is on a list of passwords that "
                      "attackers try first. Choose another, for example three or four "
                      "unrelated words."))
    return None


def too_similar(password: str, email: str, name: str) -> bool:
    """Whether ``password`` is too like the email address or the name, or any part of them."""
    lowered = password.lower()
    for value in (email.strip().lower(), name.strip().lower()):
        if not value:
            continue
        for part in {value, value.partition("@")[0], *re.split(r"\W+", value)}:
            if len(part) >= 3 and SequenceMatcher(a=lowered, b=part).ratio() >= MAX_SIMILARITY:
                return True
    return False
