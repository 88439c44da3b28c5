"""r1zero: reproduce DeepSeek R1-Zero (GRPO + rule-based rewards) on Countdown.

The package layout is the pipeline: ``task`` (data, prompts, rewards, metrics) ->
``rollout`` (policy, generation) -> ``algos`` (advantages, losses, KL) -> ``train`` (the
loop, checkpoints, logs) -> ``report``. ``evaluate`` scores any model; ``models`` loads
one; ``tiny`` builds the embedded default model; ``bench`` measures speed. The layers
and who owns what: docs/architecture.md (checked by tests/test_architecture.py).
"""

__version__ = "0.1.0"
