"""How messages count and show values (``search_space.messages``)."""

from __future__ import annotations

from search_space.messages import SHOWN_LIMIT, are, counted, one_line, shown


def test_counted_is_singular_for_exactly_one() -> None:
    assert [counted(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    assert counted(1.0, "epoch") == "1 epoch" and counted(0.4, "epoch") == "0.4 epochs"
    assert counted(3, "class", "classes") == "3 classes" and counted(1, "class") == "1 class"
    assert (are(1), are(2)) == ("is", "are")


def test_shown_cuts_a_long_value_and_says_its_length() -> None:
    assert shown("short") == "'short'" and shown(7) == "7"
    assert shown("a" * 10_000) == "'" + "a" * 60 + "…' (10,000 characters)"
    assert shown("x" * SHOWN_LIMIT, quoted=False) == "x" * SHOWN_LIMIT


def test_one_line_cuts_every_long_value_of_a_message() -> None:
    long = "b" * 5000
    message = f"{long!r} is not a preset; the model's size\nand {long}: not found"
    assert one_line(message) == (
        "'" + "b" * 60 + "…' (5,000 characters) is not a preset; the model's size and "
        + "b" * 60 + "… (5,000 characters): not found")
    assert one_line("it's 'short', isn't it") == "it's 'short', isn't it"
