"""YAML + ``--key value`` overrides -> :class:`Config`, with one-line errors.

Unknown keys fail with the closest valid name; wrong types name the key and the expected
type; accepted-but-unused keys are collected for one warning each.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from r1zero.config.defaults import DEFAULTS
from r1zero.config.fields import ALIASES, SECTIONS, UNUSED, Config, ConfigError, all_fields


def _type_name(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return _type_name(args[0])
    if typing.get_origin(tp) is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        dict: "a mapping",
    }.get(tp, str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the field type; command-line strings arrive YAML-parsed."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner)
    bad = ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        items = value if isinstance(value, list) else [value]
        if args[0] is str:  # --reward_funcs format,equation,thought_len
            items = [x.strip() if isinstance(x, str) else x for v in items for x in _split(v)]
        return [_coerce(key, v, args[0]) for v in items]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise bad
    if tp is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise bad
    if tp is dict:
        if isinstance(value, dict):
            return value
        raise bad
    return value


def _split(v: Any) -> list[Any]:
    return [x for x in v.split(",") if x.strip()] if isinstance(v, str) else [v]


def _takes_list(key: str) -> bool:
    fields = all_fields()
    key = ALIASES.get(key, key)
    if key not in fields:
        return False
    tp = typing.get_type_hints(SECTIONS[fields[key][0]])[key]
    inner = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    return any(typing.get_origin(a) is list or a is list for a in [tp, *inner])


def _parse_cli(args: list[str]) -> dict[str, Any]:
    """``--key value`` / ``--key=value`` / bare ``--flag`` (true) -> dict; values YAML-parsed.
    Several values after one key (``--reward_funcs format equation``) make a list."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--"):
            raise ConfigError(f"unexpected argument {tok!r}: options look like --key value")
        key, eq, val = tok[2:].partition("=")
        key = key.replace("-", "_")
        if eq:
            out[key] = yaml.safe_load(val) if val != "" else None
            i += 1
            continue
        values = []
        while i + 1 < len(args) and not args[i + 1].startswith("--"):
            values.append(args[i + 1])
            i += 1
            if not _takes_list(key):
                break
        parsed = [yaml.safe_load(v) if v != "" else None for v in values] or [True]
        out[key] = parsed[0] if len(parsed) == 1 else parsed
        i += 1
    return out


def closest(key: str) -> str:
    names = list(all_fields()) + list(ALIASES) + list(UNUSED)
    match = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    return f"; did you mean {match[0]}?" if match else "; see r1zero train --help"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """YAML file (optional) then ``--key value`` overrides -> :class:`Config`."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of key: value")
        raw.update(loaded)
    raw.update(_parse_cli(overrides or []))
    return from_dict(raw)


def from_dict(raw: dict[str, Any]) -> Config:
    cfg = Config()
    fields = all_fields()
    for key, value in raw.items():
        key = ALIASES.get(key, key)
        if key in UNUSED:
            cfg.unused[key] = value
            continue
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r}{closest(key)}")
        sec, f = fields[key]
        tp = typing.get_type_hints(SECTIONS[sec])[key]
        if key == "scale_rewards" and isinstance(value, bool):  # TRL's older true/false
            value = "group" if value else "none"
        if key == "resume_from_checkpoint" and isinstance(value, bool):  # --... true (YAML bool)
            value = "true" if value else None
        if key == "save_strategy" and value is False:  # YAML 1.1 reads a bare no as false
            value = "no"
        setattr(getattr(cfg, sec), key, _coerce(key, value, tp))
        cfg.explicit.add(key)
    _apply_defaults(cfg)
    _normalise(cfg)
    return cfg


def _apply_defaults(cfg: Config) -> None:
    """Fill the keys the user left out from the named ``defaults`` set."""
    name = cfg.grpo.defaults
    if name not in DEFAULTS:
        raise ConfigError(
            f"defaults: unknown {name!r}{_hint(name, list(DEFAULTS))}; choose one of {', '.join(DEFAULTS)}"
        )
    fields = all_fields()
    for key, value in DEFAULTS[name].items():
        if key in cfg.explicit:
            continue
        sec, f = fields[key]
        tp = typing.get_type_hints(SECTIONS[sec])[key]
        setattr(getattr(cfg, sec), key, _coerce(key, value, tp))
        cfg.from_defaults[key] = value


def _hint(value: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(value, valid, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def _normalise(cfg: Config) -> None:
    g, r = cfg.grpo, cfg.run
    if isinstance(g.scale_rewards, str) and g.scale_rewards.lower() in ("true", "false"):
        g.scale_rewards = "group" if g.scale_rewards.lower() == "true" else "none"
    r.report_to = [x for x in r.report_to if x != "none"] + (
        ["swanlab"] if r.swanlab and "swanlab" not in r.report_to else []
    )
    checks = [
        (
            g.num_generations >= 2,
            "num_generations must be at least 2 (GRPO compares completions within a group)",
        ),
        (g.batch_unit in ("prompts", "completions"), "batch_unit must be prompts or completions"),
        (
            g.batch_unit != "completions" or g.per_device_train_batch_size % g.num_generations == 0,
            f"per_device_train_batch_size ({g.per_device_train_batch_size} completions) must be divisible by num_generations ({g.num_generations}); or set batch_unit: prompts",
        ),
        (g.per_device_train_batch_size >= 1, "per_device_train_batch_size must be at least 1"),
        (g.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be at least 1"),
        (g.max_completion_length >= 1, "max_completion_length must be at least 1"),
        (
            g.scale_rewards in ("group", "batch", "none"),
            "scale_rewards must be group, batch or none",
        ),
        (g.beta >= 0, "beta must be >= 0"),
        (g.temperature > 0, "temperature must be > 0"),
        (0 < g.top_p <= 1, "top_p must be in (0, 1]"),
        (g.top_k is None or g.top_k >= 0, "top_k must be >= 0 (0 or empty: off)"),
        (g.repetition_penalty > 0, "repetition_penalty must be > 0 (1.0: off)"),
        (
            g.repetition_penalty == 1.0 or g.rollout_engine in ("hf", "hf_static"),
            f"repetition_penalty {g.repetition_penalty} needs rollout_engine: hf or hf_static (the fast engine samples softmax(logits / temperature) only); or set repetition_penalty: 1.0",
        ),
        (g.num_iterations >= 1, "num_iterations must be at least 1"),
        (g.ppo_max_token_len_per_gpu >= 1, "ppo_max_token_len_per_gpu must be at least 1"),
        (
            g.log_prob_max_token_len_per_gpu >= 1,
            "log_prob_max_token_len_per_gpu must be at least 1",
        ),
        (r.save_strategy in ("steps", "no"), "save_strategy must be steps or no"),
        (
            g.reward_weights is None or len(g.reward_weights) == len(g.reward_funcs),
            f"reward_weights has {len(g.reward_weights or [])} entries for {len(g.reward_funcs)} reward_funcs",
        ),
        (
            all(x in ("tensorboard", "swanlab", "wandb") for x in r.report_to),
            "report_to takes tensorboard, swanlab, wandb or none",
        ),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
