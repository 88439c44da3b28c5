"""Shared test setup: tests never touch the network."""

import os

# Set before any test module imports `datasets` / `huggingface_hub`, which read them once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
