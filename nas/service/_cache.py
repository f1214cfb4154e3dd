"""Answers to read queries kept while their job is unchanged: a Pareto page is a pure function of
the query and the job's stamp (trials recorded, calibration version), so a dashboard or twenty
clients polling a job share one computation per change. Bounded in bytes, keys (a query's text)
and bodies alike, least recently used first out."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

MAX_BYTES = 32 << 20


class PageCache:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pages: OrderedDict[Hashable, tuple[Hashable, bytes, int]] = OrderedDict()  # stamp, body, size
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp: Hashable) -> bytes | None:
        with self._lock:
            found = self._pages.get(key)
            if found is None or found[0] != stamp:
                return None
            self._pages.move_to_end(key)
            return found[1]

    def put(self, key: Hashable, stamp: Hashable, body: bytes) -> None:
        size = len(body) + _key_bytes(key)
        if size > self.max_bytes // 8:  # one huge page would evict everything else
            return
        with self._lock:
            old = self._pages.pop(key, None)
            if old is not None:
                self._size -= old[2]
            self._pages[key] = (stamp, body, size)
            self._size += size
            while self._size > self.max_bytes:
                _, (_, _, evicted) = self._pages.popitem(last=False)
                self._size -= evicted


def _key_bytes(key: Hashable) -> int:
    """What a key holds, in bytes, give or take Python's object headers (a query's strings are most of it)."""
    return len(repr(key).encode()) + 64
