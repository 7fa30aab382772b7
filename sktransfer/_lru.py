"""A small thread-safe, size-bounded memo shared by the package's caches."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LRUMemo:
    """A least-recently-used mapping with at most ``maxsize`` entries.

    Every operation holds one lock, so estimators fitted from several threads
    can share it. :meth:`get_or_build` builds a missing value under a per-key
    lock: two threads asking for the same key build it once, while different
    keys build concurrently.
    """

    def __init__(self, maxsize: int):
        self.maxsize = int(maxsize)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key, default=None):
        with self._lock:
            if key not in self._data:
                return default
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def get_or_build(self, key, build: Callable[[], Any]):
        missing = object()
        value = self.get(key, missing)
        if value is not missing:
            return value
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            value = self.get(key, missing)
            if value is missing:
                value = build()
                self.put(key, value)
        with self._lock:
            self._building.pop(key, None)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
