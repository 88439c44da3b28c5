"""The GRPO loop: the step, the update, checkpoints and logs (loading is r1zero.models)."""
