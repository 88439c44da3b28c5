"""Config presets and data splits: the run's inputs, resolved once."""

from __future__ import annotations

import math
from typing import Any

from r1zero.config import Config, from_dict
from r1zero.progress import phase
from r1zero.task import data as task_data

# The embedded default: what `r1zero train` with no arguments runs on a 2-core CPU.
TINY_PRESET: dict[str, Any] = {
    "prompt_template": "short",
    "num_samples": 4000,
    "test_size": 0.1,
    "eval_num_samples": 200,
    "per_device_train_batch_size": 16,
    "num_generations": 8,
    "max_steps": 60,
    "learning_rate": 2e-4,
    "lr_scheduler_type": "constant_with_warmup",
    "warmup_steps": 3,
    "beta": 0.0,
    "loss_type": "dapo",
    "max_prompt_length": 64,
    "max_completion_length": 160,
    "temperature": 1.0,
    "save_steps": 30,
    "save_total_limit": 2,
    "output_dir": "runs/tiny",
    "reward_funcs": ["format", "equation"],
}


def apply_presets(cfg: Config, log=print) -> None:
    """No model given: build/find the tiny model and fill every key the user did not set."""
    if cfg.model.model_name_or_path:
        return
    from r1zero.tiny import build_tiny

    path = build_tiny(seed=0, log=log)
    preset = from_dict({k: v for k, v in TINY_PRESET.items() if k not in cfg.explicit})
    for sec in ("model", "data", "grpo", "run"):
        for k, v in vars(getattr(preset, sec)).items():
            if k in preset.explicit:
                setattr(getattr(cfg, sec), k, v)
    cfg.model.model_name_or_path = str(path)
    cfg.tiny = True


def load_splits(cfg: Config) -> tuple[list[dict], list[dict]]:
    """The tutorial's selection: seeded shuffle, take num_samples, 90/10 train/test."""
    d = cfg.data
    if d.dataset_id_or_path in (None, "", "generate"):
        if cfg.tiny:  # problems the tiny model never saw are the test set
            from r1zero.tiny import tiny_splits

            n_test = math.ceil(d.test_size * d.num_samples)
            return tiny_splits(d.num_samples - n_test, n_test, cfg.grpo.seed + 1)
        what = f"generating {d.num_samples:,} Countdown problems (no dataset_id_or_path given)"
        with phase(what, total=d.num_samples) as advance:
            rows = task_data.generate_rows(d.num_samples, cfg.grpo.seed + 1, progress=advance)
    else:
        with phase(f"loading the dataset {d.dataset_id_or_path}"):
            loaded = task_data.load_rows(
                d.dataset_id_or_path, split=d.dataset_splits, skip_malformed=d.skip_malformed
            )
        rows = loaded.rows
    return task_data.select(rows, seed=cfg.grpo.seed, n=d.num_samples, test_size=d.test_size)
