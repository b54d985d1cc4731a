"""One duration type for every model: the text is checked, normalised, and bounded with the marketer's message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from drainage.channel import Duration, duration, parse_duration

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it

Short = duration(maximum=timedelta(minutes=2), message="'{value}' is longer than 2m")


class Options(BaseModel):
    wait: Duration = "30s"
    short: Short | None = None


def _message(**values: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Options.model_validate(values)
    (error,) = caught.value.errors()
    return str(error["ctx"]["error"])


def test_text_is_kept_normalised() -> None:
    assert Options.model_validate({"wait": " 1H 30m "}).wait == "1h30m"
    assert parse_duration(Options.model_validate({"wait": "1H 30m"}).wait) == timedelta(hours=1, minutes=30)
    assert Options().wait == "30s" and Options().short is None


def test_the_messages_marketers_get() -> None:
    assert _message(wait="2 days") == ("'2 days' is not a duration: expected a number and a unit, such as 30m, "
                                       "6h, 1d or 1w")
    assert _message(wait="0s").startswith("'0s' is not a duration")
    assert _message(wait="99999999999w") == "'99999999999w' is too long a duration"
    assert _message(short="3m") == "'3m' is longer than 2m"
    assert _message(short="soon").startswith("'soon' is not a duration")
    assert Options.model_validate({"short": "2m"}).short == "2m"  # bounds are inclusive
