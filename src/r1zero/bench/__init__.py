"""``r1zero bench``: speed and memory of rollout, update and the whole GRPO step (see main)."""
