"""The Countdown task: data, prompts and rule-based rewards."""
