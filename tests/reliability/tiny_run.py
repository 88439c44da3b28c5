"""The ``r1zero train`` options of a tiny valid run on CPU, shared by the reliability
harnesses: each one passes only the keys its runs change (a later key wins)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_RUN: dict[str, Any] = {
    "num_samples": 40,
    "eval_num_samples": 4,
    "max_completion_length": 8,
    "per_device_train_batch_size": 2,
    "num_generations": 2,
    "report_to": "none",
    "live": "false",
}


def tiny_run_args(model: Path, data: Path, out: Path, **keys: Any) -> list[str]:
    """``--key value`` pairs: the model, the data, TINY_RUN, ``keys``, the output folder."""
    merged = {"model_name_or_path": model, "dataset_id_or_path": data, **TINY_RUN, **keys}
    merged["output_dir"] = out
    return [x for k, v in merged.items() for x in (f"--{k}", str(v))]
