"""Seeded randomness with cheap picks, shared by the seed generator's modules."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class Dice:
    """``random.Random`` with cheap picks: ``randint``/``choice`` dominate seeding time otherwise."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self.random = self._random.random
        self.uniform = self._random.uniform
        self.sample = self._random.sample

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.random() * len(seq))]

    def between(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low + 1))
