"""Folding the JSONs of several ``r1zero bench`` calls into the JSON of record.

A device call holds about 10 minutes, so one workload and a few sections per call; ``r1zero
bench --merge A.json B.json ... --sections ''`` merges them without a GPU. Results written
before the workloads existed (sections at the top level) count as the ``reference`` workload.
"""

from __future__ import annotations

SECTIONS = ("rollout", "train", "step", "head", "lora", "trl")


def as_workloads(result: dict) -> dict:
    """``workloads`` of a result; an old result's top-level sections become ``reference``'s."""
    if "workloads" in result:
        return result["workloads"]
    old = {k: result[k] for k in SECTIONS if k in result}
    if "workload" in result:  # every completion forced to completion_len
        c = result["workload"].get("completion_len")
        fixed = {"completion_mean": c, "completion_median": c, "completion_max": c}
        old["workload"] = {"name": "reference", **fixed, **result["workload"]}
    return {"reference": old} if old else {}


def old_errors(result: dict) -> dict:
    """Errors keyed ``workload/section``; an old result's plain section keys are reference's."""
    errors = result.get("errors") or {}
    if "workloads" in result:
        return dict(errors)
    return {(k if "/" in k else f"reference/{k}"): v for k, v in errors.items()}


def merge_into(result: dict, earlier: dict, *, measuring: bool) -> None:
    """Fold an earlier result in: its sections of each workload (later files win; sections
    that this run measures replace them afterwards); its device, date and versions when this
    run measures nothing. Rollout specs merge one by one."""
    commands = result.get("commands", []) + earlier.get("commands", [earlier.get("command")])
    mine = result.setdefault("workloads", {})
    for name, sections in as_workloads(earlier).items():
        slot = mine.setdefault(name, {})
        for key, value in sections.items():
            if key == "rollout" and isinstance(slot.get(key), dict):
                slot[key] = {**slot[key], **value}
            elif key in SECTIONS or key == "workload":
                slot[key] = value
    errors = {**result.get("errors", {}), **old_errors(earlier)}
    for name, sections in as_workloads(earlier).items():  # stale once a later file measured it
        for sec in SECTIONS:
            if sec in sections and "error" not in (sections.get(sec) or {}):
                if f"{name}/{sec}" not in old_errors(earlier):
                    errors.pop(f"{name}/{sec}", None)
    result["errors"] = errors
    skip = {"errors", "workloads", "commands", *SECTIONS, "workload"}
    for key, value in earlier.items():
        if key == "notes" and isinstance(result.get(key), list):
            result[key] = result[key] + [n for n in value if n not in result[key]]
        elif key not in skip and (key not in result or not measuring):
            result[key] = value
    result["commands"] = [c for c in commands if c]
