"""Puts `surveys` and the shared strategies on sys.path; the `instrument` fixture."""

from __future__ import annotations

import sys
from pathlib import Path

# The project is not necessarily pip-installed and pytest does not put the rootdir on
# sys.path by itself (redundant once pyproject sets `pythonpath`). This folder goes on too,
# so that test modules can import survey_strategies whatever pytest's import mode.
_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parents[1]), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import pytest  # noqa: E402

import surveys  # noqa: E402
from survey_strategies import INSTRUMENT_IDS  # noqa: E402


@pytest.fixture(params=INSTRUMENT_IDS)
def instrument(request: pytest.FixtureRequest) -> surveys.Instrument:
    return surveys.get(request.param)


def pytest_configure(config: pytest.Config) -> None:
    # When a Hypothesis test fails, its pytest plugin imports libcst to suggest a patch, and
    # libcst trips mypy_extensions' TypedDict DeprecationWarning; under filterwarnings=error
    # that turns a readable failure into an INTERNALERROR. (Belongs in pyproject eventually.)
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )
