"""The GRPO loop: model loading, the step, checkpoints and logs."""
