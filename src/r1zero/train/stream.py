"""Seeded prompt order that a resumed run continues exactly."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class PromptStream:
    """Yields ``per_step`` prompt rows at a time; each epoch is a fresh permutation
    drawn from ``Random(seed + epoch)``, so the position alone restores the order."""

    rows: list[dict]
    per_step: int
    seed: int
    position: int = 0  # rows handed out so far

    def _order(self, epoch: int) -> list[int]:
        idx = list(range(len(self.rows)))
        random.Random(self.seed + epoch).shuffle(idx)
        return idx

    def __iter__(self) -> PromptStream:
        return self

    def __next__(self) -> list[dict]:
        n = len(self.rows)
        out = []
        for _ in range(self.per_step):
            epoch, i = divmod(self.position, n)
            if i == 0 or not hasattr(self, "_cache") or self._cache[0] != epoch:
                self._cache = (epoch, self._order(epoch))
            out.append(self.rows[self._cache[1][i]])
            self.position += 1
        return out

    def state_dict(self) -> dict:
        return {"position": self.position, "seed": self.seed, "num_rows": len(self.rows)}

    def load_state_dict(self, state: dict) -> None:
        if state["num_rows"] != len(self.rows):
            raise ValueError(
                f"resume: the dataset has {len(self.rows)} training rows, the checkpoint was made with {state['num_rows']}"
            )
        self.position = state["position"]
