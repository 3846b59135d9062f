"""The one cache class: bounded, least recently used forgotten first."""

from __future__ import annotations

import pytest

from ipldwrite.dag import LRU


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_an_earlier_value_wins_and_zero_keeps_nothing() -> None:
    cache: LRU[str, list[int]] = LRU(4)
    first = cache.put("k", [1])
    assert cache.put("k", [1]) is first
    assert cache.get_or_make("k", lambda _: [2]) is first
    assert cache.get_or_make("new", lambda key: [len(key)]) == [3]
    off: LRU[str, int] = LRU(0)
    assert off.put("k", 1) == 1
    assert off.get("k") is None
    with pytest.raises(ValueError, match="negative"):
        LRU(-1)
