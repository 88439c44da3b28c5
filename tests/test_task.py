"""The task supplies its metrics (issue 14 item 2): the trainer logs what the task
computes from the per-function rewards and knows no reward's name."""

from __future__ import annotations

import math

import pytest
import torch

from r1zero.config import GRPOConfig
from r1zero.rollout import RolloutBatch
from r1zero.task.tasks import COUNTDOWN_METRICS, Task, countdown, solved_rate
from r1zero.train.experience import Experience
from r1zero.train.step import step_metrics


def _experience(rewards_per_func: dict[str, torch.Tensor]) -> Experience:
    n = len(next(iter(rewards_per_func.values())))
    ids = torch.ones(n, 3, dtype=torch.long)
    total = sum(rewards_per_func.values())
    return Experience(
        rows=[{"nums": [1, 2], "target": 3}] * n,
        prompts=["p"] * n,
        completions=["c"] * n,
        batch=RolloutBatch(ids, ids, ids, ids, torch.zeros(n, dtype=torch.bool)),
        rewards_per_func=rewards_per_func,
        rewards=total,
        advantages=torch.zeros(n),
    )


def test_countdown_metrics_are_the_share_of_full_rewards():
    """accuracy: equation reward >= 1; format_rate: format reward >= 1; NaN (abstained)
    counts as not earned, as the trainer's own branches did before."""
    rewards = {
        "format": torch.tensor([1.0, 1.0, 0.0, 1.0]),
        "equation": torch.tensor([1.0, 0.0, math.nan, 0.5]),
    }
    m = countdown(["format", "equation"]).metrics_of(rewards)
    assert m == {"accuracy": pytest.approx(0.25), "format_rate": pytest.approx(0.75)}


def test_a_metric_whose_reward_the_run_omits_is_left_out():
    m = Task("countdown", [], COUNTDOWN_METRICS).metrics_of({"format": torch.ones(2)})
    assert m == {"format_rate": 1.0}


def test_the_trainer_logs_another_tasks_metrics_and_no_countdown_names():
    """A task whose rewards are named differently: its metric reaches the step's metrics,
    and accuracy / format_rate do not appear although a reward is named 'equation'."""
    task = Task("other", [], {"solved": solved_rate("proof")})
    exp = _experience({"proof": torch.tensor([1.0, 0.0]), "equation": torch.ones(2)})
    m = step_metrics(exp, GRPOConfig(num_generations=2), task)
    assert m["solved"] == pytest.approx(0.5)
    assert "accuracy" not in m and "format_rate" not in m
    assert m["rewards/proof"] == pytest.approx(0.5)


def test_countdown_task_loads_its_reward_functions():
    task = countdown(["format", "equation"])
    assert [name for name, _ in task.reward_funcs] == ["format", "equation"]
    with pytest.raises(ValueError, match="equaton"):
        countdown(["equaton"])
