"""Checks of a whole config against the registries it names, run by ``train(cfg)``
itself (so a run started from Python is checked as one started by ``r1zero train``).

The registries (losses, advantages, engines, templates, rewards) are imported inside
:func:`validate`, so r1zero.config stays importable on its own (no torch import)."""

from __future__ import annotations

import difflib
import math

from r1zero.config.fields import Config, ConfigError


def validate(cfg: Config) -> None:
    """Names and values that would otherwise fail only at their first use, as a
    traceback: registry names (loss, advantage, scheduler, template, engine, reward
    functions) and ranges. One ConfigError line naming the key."""
    from transformers import SchedulerType

    from r1zero.algos import ADVANTAGES, LOSS_AGGREGATIONS
    from r1zero.rollout import get_engine
    from r1zero.task.prompts import TEMPLATES
    from r1zero.task.rewards import load_reward_funcs

    g, d = cfg.grpo, cfg.data
    named = {
        "loss_type": (g.loss_type, list(LOSS_AGGREGATIONS)),
        "advantage_estimator": (g.advantage_estimator, list(ADVANTAGES)),
        "lr_scheduler_type": (g.lr_scheduler_type, [t.value for t in SchedulerType]),
        "prompt_template": (d.prompt_template, list(TEMPLATES)),
    }
    for key, (value, valid) in named.items():
        if value not in valid:
            close = difflib.get_close_matches(str(value), valid, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(f"{key}: unknown {value!r}; {hint}choose one of {', '.join(valid)}")
    checks = [
        (
            math.isfinite(g.learning_rate) and g.learning_rate >= 0,
            f"learning_rate must be a finite number >= 0, got {g.learning_rate}",
        ),
        (0 <= d.test_size < 1, f"test_size must be in [0, 1), got {d.test_size}"),
        (d.num_samples >= 1, f"num_samples must be at least 1, got {d.num_samples}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    try:
        if g.rollout_engine != "auto":
            get_engine(g.rollout_engine)
        load_reward_funcs(g.reward_funcs)
    except ValueError as e:
        key = "rollout_engine" if "rollout_engine" in str(e) else "reward_funcs"
        raise ConfigError(f"{key}: {e}") from None
