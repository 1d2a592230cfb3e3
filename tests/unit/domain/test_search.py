"""Name search rules (loyalty.domain.search): which words are indexed, which query word is
read from the index, and which index entries answer a query. Pure code, no AWS."""

from __future__ import annotations

import pytest

from loyalty.domain.search import (
    MAX_INDEXED_WORDS,
    anchor_of,
    answers,
    indexed_words,
    name_words,
    query_words,
)


def test_a_name_is_its_words_without_case_or_accents() -> None:
    assert name_words("Zoë", "Ångström Lee") == ["zoe", "angstrom", "lee"]
    assert name_words(None, "LEE") == ["lee"]
    assert name_words(None, None) == []


def test_indexed_words_are_distinct_long_enough_and_bounded() -> None:
    # Given a name with a repeated word and an initial
    assert indexed_words(["ann", "b", "ann", "lee"]) == ["ann", "lee"]
    # And a name of very many words writes a bounded number of entries
    many = [f"w{i:02d}" for i in range(30)]
    assert indexed_words(many) == many[:MAX_INDEXED_WORDS]


@pytest.mark.parametrize(
    ("q", "anchor"),
    [("lee", "lee"), ("ann l", "ann"), ("l ANN", "ann"), ("a b", None), ("", None), ("Ørs", "ors")],
)
def test_the_anchor_is_the_longest_query_word_of_two_letters_or_more(q: str, anchor: str | None) -> None:
    assert anchor_of(query_words(q)) == anchor


@pytest.mark.parametrize(
    ("word", "words", "q", "expected"),
    [
        # the start of any word, first or last
        ("lee", ["ann", "lee"], "le", True),
        ("ann", ["ann", "lee"], "le", False),
        # not the middle of a word
        ("marsh", ["bob", "marsh"], "arsh", False),
        # a customer two of whose words carry the anchor answers once, by the first in index order
        ("anderson", ["ann", "anderson"], "an", True),
        ("ann", ["ann", "anderson"], "an", False),
        # other query words must start other words of the name
        ("ann", ["ann", "lee"], "ann l", True),
        ("ann", ["ann", "lee"], "ann b", False),
        ("ann", ["ann", "lee"], "ann an", False),
        ("ann", ["ann", "ann"], "ann an", True),
        # the same word twice in a name is still one entry
        ("ann", ["ann", "lee", "ann"], "ann", True),
    ],
)
def test_which_entries_answer_a_query(word: str, words: list[str], q: str, expected: bool) -> None:
    assert answers(word, words, query_words(q)) is expected


def test_a_word_past_the_indexed_ones_never_claims_the_answer() -> None:
    # Given a name whose only carrier of the anchor is past the indexed words
    words = [f"w{i:02d}" for i in range(MAX_INDEXED_WORDS)] + ["zed"]
    # Then nothing answers (there is no entry for it), rather than an entry that is never read
    assert not any(answers(w, words, ["ze"]) for w in indexed_words(words))
