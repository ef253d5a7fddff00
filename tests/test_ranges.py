"""Index selections parse as users write them and reject anything else with a clear message."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fovflow.errors import ConfigError
from fovflow.ranges import format_ranges, parse_ranges


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0-3,5", [0, 1, 2, 3, 5]), ("1-4,6,9-11", [1, 2, 3, 4, 6, 9, 10, 11]), ("7", [7]),
     (" 2-3 , 0 ", [0, 2, 3]), (4, [4]), ([3, 1, "5-6"], [1, 3, 5, 6]),
     ("3,1-2,2", [1, 2, 3])],
)
def test_ranges_and_lists_parse_to_sorted_unique_indices(text, expected) -> None:
    assert parse_ranges(text) == expected


def test_all_selects_every_index_below_the_limit() -> None:
    assert parse_ranges("all", limit=3) == [0, 1, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [("0-3,x", "'x'"), ("", "empty item"), ("1,,2", "empty item"), ("5-2", "reversed"),
     ("-1", "negative"), ("1-", "'1-'"), ("a-b", "'a-b'"), ([], "selects nothing"),
     (True, "invalid"), ("all", "'all'")],
)
def test_malformed_selection_is_a_clear_error(text, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ranges(text)


def test_huge_index_is_refused_before_any_work() -> None:
    with pytest.raises(ConfigError, match="too large"):
        parse_ranges("0-1000000000000")


def test_index_beyond_the_limit_names_the_valid_range() -> None:
    with pytest.raises(ConfigError, match=r"index 12 .* there are 10 \(0 to 9\)"):
        parse_ranges("0-3,12", limit=10)


@given(st.sets(st.integers(min_value=0, max_value=500), min_size=1))
def test_format_then_parse_is_the_identity(indices: set[int]) -> None:
    assert parse_ranges(format_ranges(indices)) == sorted(indices)


@given(st.text(alphabet="0123456789-, x", max_size=20))
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    try:
        result = parse_ranges(text)
    except ConfigError:
        return
    assert result == sorted(set(result)) and all(i >= 0 for i in result)
