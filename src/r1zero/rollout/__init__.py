"""Rollout engines, looked up by the config's ``rollout_engine`` name."""

from __future__ import annotations

from r1zero.rollout.base import RolloutBatch, RolloutEngine, SamplingParams

__all__ = ["RolloutBatch", "RolloutEngine", "SamplingParams", "get_engine"]


def get_engine(name: str) -> RolloutEngine:
    """``hf`` (HF generate, dynamic cache), ``hf_static`` (static cache) or ``fast`` (ours)."""
    if name == "hf":
        from r1zero.rollout.hf import HFGenerateEngine

        return HFGenerateEngine()
    if name == "hf_static":
        from r1zero.rollout.hf import HFGenerateEngine

        return HFGenerateEngine(cache_implementation="static")
    if name == "fast":
        from r1zero.rollout.fast import FastEngine

        return FastEngine()
    raise ValueError(f"unknown rollout_engine {name!r}; choose hf, hf_static or fast")
