"""r1zero: reproduce DeepSeek R1-Zero (GRPO + rule-based rewards) on Countdown.

The package layout is the pipeline: ``task`` (data, prompts, rewards) -> ``rollout``
-> ``algos`` (advantages, losses, KL) -> ``train`` (the loop, checkpoints, logs)
-> ``report``. ``tiny`` builds the embedded default model; ``bench`` measures speed.
"""

__version__ = "0.1.0"
