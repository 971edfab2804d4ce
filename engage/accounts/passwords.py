"""The password rules, in one place: every way of setting a password checks them here.

A password is refused when it is shorter than :data:`MIN_LENGTH` or longer than
:data:`MAX_LENGTH`, when it contains the user's email address (or the part before the @)
or name, or when it is one of 20,000 common passwords (``data/common-passwords.txt.gz``,
from Django; see ``data/NOTICE.md``). The list is compared case-insensitively and read
once, at first need.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

MIN_LENGTH = 10
#: Long enough for any passphrase or password manager; short enough that hashing a posted
#: megabyte cannot be used to load the server.
MAX_LENGTH = 128
COMMON_PASSWORDS = Path(__file__).with_name("data") / "common-passwords.txt.gz"
#: Parts of a name or email shorter than this are not looked for (``al`` in "always").
_MIN_PART = 4


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
    lowered = password.lower()
    local = email.strip().lower().partition("@")[0]
    parts = [email.strip().lower(), local, name.strip().lower(), *name.lower().split()]
    if any(len(part) >= _MIN_PART and part in lowered for part in parts):
        return str(_l("Do not use your name or email address in your password."))
    if is_common(password):
        return str(_l("This password is too common: it is on a list of passwords that "
                      "attackers try first. Choose another, for example three or four "
                      "unrelated words."))
    return None
