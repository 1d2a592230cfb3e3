"""Name search as staff expect it (docs/design.md#search): `q` matches the start of any word of
the name, first or last, case- and accent-insensitively.

The name index holds one entry per distinct word of a listed customer's name, keyed by the
word's first letters, so one partition answers any query word of that many letters or more.
A query reads the partition of its longest word (the anchor) and keeps the entries that
answer it: the other query words must start distinct other words of the name, and a
customer is answered once, by its first matching word, however many of its words match.
"""

from __future__ import annotations

from collections.abc import Sequence

from loyalty.domain.normalize import search_words

# The index partition of a word is its first PREFIX_LETTERS letters: a query needs a word
# at least that long to name one partition.
PREFIX_LETTERS = 2
# Bounds per customer: names are at most 2 x 100 characters, but one entry is one write.
MAX_NAME_WORDS = 16
MAX_INDEXED_WORDS = 8


def name_words(first: str | None, last: str | None) -> list[str]:
    """The words of a name as search compares them, in order (repeats kept)."""
    return search_words(first, last)[:MAX_NAME_WORDS]


def indexed_words(words: Sequence[str]) -> list[str]:
    """The words that get an index entry: distinct, long enough to be a query's anchor."""
    return list(dict.fromkeys(w for w in words if len(w) >= PREFIX_LETTERS))[:MAX_INDEXED_WORDS]


def query_words(q: str) -> list[str]:
    return search_words(q)[:MAX_NAME_WORDS]


def anchor_of(words: Sequence[str]) -> str | None:
    """The query word whose partition is read: the longest (the most selective), else None
    when no word is long enough to name a partition."""
    longest = max(words, key=len, default="")
    return longest if len(longest) >= PREFIX_LETTERS else None


def _starts_distinct(prefixes: list[str], words: list[str]) -> bool:
    """Each prefix starts a different one of `words` (names are short: plain backtracking)."""
    if not prefixes:
        return True
    first, rest = prefixes[0], prefixes[1:]
    for i, word in enumerate(words):
        if word.startswith(first) and _starts_distinct(rest, words[:i] + words[i + 1 :]):
            return True
    return False


def answers(word: str, words: Sequence[str], query: Sequence[str]) -> bool:
    """Whether the index entry of `word` (a word of the name `words`) answers `query`.

    Only the first word, in index order, that can carry the anchor answers, so a customer
    whose several words start with the anchor is listed once.
    """
    anchor = anchor_of(query)
    if anchor is None or not word.startswith(anchor):
        return False
    rest = list(query)
    rest.remove(anchor)
    entries = indexed_words(words)
    carriers = sorted(
        w
        for i, w in enumerate(words)
        if w in entries and w.startswith(anchor) and _starts_distinct(rest, [*words[:i], *words[i + 1 :]])
    )
    return bool(carriers) and carriers[0] == word
