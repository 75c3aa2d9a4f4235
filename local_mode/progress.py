"""Steps of a long operation as they happen (thread-safe): local mode's start-up runs several at
once (Airflow boots in a thread while the app is synthesized and provisioned); the demo shows
each with its elapsed time, tests ignore them."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Step:
    name: str
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    detail: str = ""
    failed: bool = False

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def running(self) -> bool:
        return self.ended is None


class Steps:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: list[Step] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """A step from entering to leaving the block; set ``.detail`` to say what it found."""
        current = Step(name)
        with self._lock:
            self._steps.append(current)
        try:
            yield current
        except BaseException:
            current.failed = True
            raise
        finally:
            current.ended = time.monotonic()

    def all(self) -> list[Step]:
        with self._lock:
            return list(self._steps)

    def seconds(self, name: str) -> float | None:
        return next((step.seconds for step in self.all() if step.name == name and not step.running), None)
