"""Validated field types shared by commands and requests: every text refuses NUL, every number and date has
bounds, so nothing a caller sends reaches the database as a value it would reject."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field
from zxcvbn.matching import RANKED_DICTIONARIES

MAX_CENTS = 10**12  # ten billion in major units: far beyond any rent, far inside BIGINT
EARLIEST = date(2000, 1, 1)
LATEST = date(2200, 12, 31)
MIN_PASSWORD = 10
# The 30,000 most common passwords of leaked sets, as zxcvbn ships and maintains them (word -> rank).
COMMON_PASSWORDS = RANKED_DICTIONARIES["passwords"]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _uncommon(value: str) -> str:
    if value.lower() in COMMON_PASSWORDS:
        raise ValueError("is one of the most common passwords, the first an attacker tries: choose another")
    return value


def _in_range(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


def _aware_in_range(value: datetime) -> datetime:
    _in_range(value.date())
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
Day = Annotated[date, AfterValidator(_in_range)]
Moment = Annotated[AwareDatetime, AfterValidator(_aware_in_range)]
Cents = Annotated[int, Field(ge=0, le=MAX_CENTS)]
Name = Annotated[Text, Field(min_length=1, max_length=200)]
Place = Annotated[Text, Field(min_length=1, max_length=100)]
Password = Annotated[
    str, Field(min_length=MIN_PASSWORD, max_length=128), AfterValidator(_no_nul), AfterValidator(_uncommon)
]
Email = Annotated[Text, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Priority = Literal["low", "normal", "high", "urgent"]
Facility = Annotated[Text, Field(min_length=1, max_length=50)]
