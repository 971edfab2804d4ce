"""The `instrument` fixture: each built-in instrument in turn."""

from __future__ import annotations

import pytest
from survey_strategies import INSTRUMENT_IDS

import surveys


@pytest.fixture(params=INSTRUMENT_IDS)
def instrument(request: pytest.FixtureRequest) -> surveys.Instrument:
    return surveys.get(request.param)

