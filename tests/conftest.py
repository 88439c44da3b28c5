"""Shared test setup: tests never touch the network."""

import os
import random
from pathlib import Path

import pytest

# Set before any test module imports `datasets` / `huggingface_hub`, which read them once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# One intra-op thread: the tiny models gain nothing from more, and on a shared 2-core
# machine two contending threads make a rollout several times slower. Set before torch is
# imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


# ---------------------------------------------------------------- shared fixtures


@pytest.fixture(scope="session", autouse=True)
def r1zero_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point R1ZERO_CACHE (the tiny model's cache) at a temporary folder for the session,
    so tests (and the subprocesses they start) never write to the user's cache."""
    old = os.environ.get("R1ZERO_CACHE")
    path = tmp_path_factory.mktemp("r1zero-cache")
    os.environ["R1ZERO_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("R1ZERO_CACHE", None)
    else:
        os.environ["R1ZERO_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init Qwen2 (hidden 32, 2 layers) with a small BPE tokenizer, saved as an HF
    model folder the trainer, ``r1zero eval`` and AutoModelForCausalLM load. Built in about
    a second: the tokenizer learns from a few rendered prompts and solver traces."""
    import torch

    from r1zero.task import countdown
    from r1zero.task.prompts import TEMPLATES, messages
    from r1zero.tiny import tokenizer as tiny_tok
    from r1zero.tiny.build import TinyRecipe, make_model
    from r1zero.tiny.traces import trace

    rng = random.Random(0)
    corpus = [
        tiny_tok.chat_text(messages(t, list(p.nums), p.target)) + trace(p.nums[:3], p.target, rng)
        for p in countdown.generate(60, seed=0)
        for t in TEMPLATES.values()
    ]
    tok = tiny_tok.train_tokenizer(corpus, vocab_size=512)
    torch.manual_seed(0)
    recipe = TinyRecipe(
        hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64
    )
    model = make_model(recipe, tok)
    folder = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder
