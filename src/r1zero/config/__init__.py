"""Run configuration: YAML + command-line overrides -> dataclasses with TRL's key names.

Keys are TRL's ``GRPOConfig`` / ``ModelConfig`` names plus the reference tutorial's
extras (``dataset_id_or_path``, ``swanlab``, ...), so an existing TRL YAML just works.
``fields`` defines and documents every key once; ``parse`` reads files and command lines.
"""

from r1zero.config.fields import (
    ALIASES,
    SECTIONS,
    UNUSED,
    Config,
    ConfigError,
    DataConfig,
    GRPOConfig,
    ModelConfig,
    RunConfig,
    all_fields,
    help_rows,
    prompts_per_micro_step,
    to_yaml,
)
from r1zero.config.parse import closest, from_dict, load_config

__all__ = [
    "ALIASES",
    "SECTIONS",
    "UNUSED",
    "Config",
    "ConfigError",
    "DataConfig",
    "GRPOConfig",
    "ModelConfig",
    "RunConfig",
    "all_fields",
    "closest",
    "from_dict",
    "help_rows",
    "load_config",
    "prompts_per_micro_step",
    "to_yaml",
]
