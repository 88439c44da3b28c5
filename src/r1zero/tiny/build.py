"""Build the embedded default model: tokenizer, tiny Qwen2, short supervised pretraining.

``build_tiny()`` returns a Hugging Face model folder (safetensors + tokenizer + chat
template) that loads with ``AutoModelForCausalLM`` / ``AutoTokenizer`` like any real model,
so ``r1zero train`` with no arguments exercises exactly the code path of a real run.

The prior is next-token prediction on prompt + noisy-solver trace (loss on the trace only;
see :mod:`r1zero.tiny.traces`). Everything is seeded; the folder is cached under
``$R1ZERO_CACHE`` (default ``~/.cache/r1zero``) in ``tiny-<hash>``, the hash covering the
recipe and this package's source, and is written to a temporary folder first and renamed,
so a killed build never leaves half a model behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from r1zero.task import countdown
from r1zero.task.prompts import TEMPLATES, messages
from r1zero.tiny import tokenizer as tiny_tok
from r1zero.tiny.traces import TraceMix, trace

TINY_DATA = dict(min_nums=3, max_nums=3, min_number=1, max_number=9, max_target=30, ops="+-")
"""The demo's problem distribution, as keyword arguments of ``countdown.generate``: 3
numbers from 1-9 and a target from 1-30 made with + and - (every answer is a sign pattern;
about 5,000 distinct problems)."""
TINY_TEMPLATE = "short"
"""The prompt template the tiny model was pretrained on (and the demo runs with)."""

PROBLEM_POOL = 4_096
"""Pretraining cycles through this many generated problems, a fresh trace each time
(``countdown.generate`` is the slow part of making data)."""
PRETRAIN_SEED_OFFSET = 7_919
"""Pretraining problems come from ``generate(seed=seed + this)``, away from the seeds a run
would use for its own train/test problems."""


def held_out(nums: list[int] | tuple[int, ...], target: int) -> bool:
    """A fixed quarter of the demo's problems (by a hash of the sorted numbers and target):
    pretraining never shows them, and the demo evaluates only on them and trains only on the
    rest, so its held-out accuracy is on problems the model never saw at all."""
    return zlib.crc32(f"{sorted(nums)}:{target}".encode()) % 4 == 0


def tiny_splits(n_train: int, n_test: int, seed: int) -> tuple[list[dict], list[dict]]:
    """The demo's train rows (not :func:`held_out`) and ``n_test`` distinct held-out rows."""
    train, test, seen = [], [], set()
    for p in countdown.generate(10**9, seed=seed, **TINY_DATA):
        if held_out(p.nums, p.target):
            if len(test) < n_test and p not in seen:
                seen.add(p)
                test.append(p.row())
        elif len(train) < n_train:
            train.append(p.row())
        if len(train) == n_train and len(test) == n_test:
            return train, test
    raise AssertionError("unreachable: generate is infinite")


@dataclass(frozen=True)
class TinyRecipe:
    """Everything that determines the built model (part of the cache key)."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    vocab_size: int = 1024
    """BPE vocabulary before the added tokens (the corpus runs out of merges well before)."""
    steps: int = 1200
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 30
    tokenizer_problems: int = 2_000
    mix: TraceMix = TraceMix()


def _cache_root(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("R1ZERO_CACHE", Path.home() / ".cache" / "r1zero"))


def recipe_hash(recipe: TinyRecipe, seed: int) -> str:
    """Changes with the recipe, the seed, or any source file of this package."""
    h = hashlib.sha256(
        json.dumps([dataclasses.asdict(recipe), seed, TINY_DATA], sort_keys=True).encode()
    )
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    h.update(Path(countdown.__file__).read_bytes())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------- data


def _examples(n: int, *, seed: int, mix: TraceMix) -> list[tuple[str, str]]:
    """``n`` (prompt, completion) pairs: the demo's prompt and the noisy solver's trace.

    Problems repeat every ``PROBLEM_POOL`` examples, each repeat with a fresh trace;
    :func:`held_out` problems never appear."""
    rng = random.Random(seed)
    pool = [p for p in countdown.generate(PROBLEM_POOL, seed=seed, **TINY_DATA)]
    pool = [p for p in pool if not held_out(p.nums, p.target)]
    template = TEMPLATES[TINY_TEMPLATE]
    out = []
    for i in range(n):
        p = pool[i % len(pool)]
        prompt = tiny_tok.chat_text(messages(template, list(p.nums), p.target))
        out.append((prompt, trace(p.nums, p.target, rng, mix)))
    return out


def _encode(
    tok: PreTrainedTokenizerFast, pairs: list[tuple[str, str]]
) -> list[tuple[list[int], int]]:
    """Token ids of prompt + completion, and where the completion starts."""
    prompts = tok([p for p, _ in pairs], add_special_tokens=False)["input_ids"]
    completions = tok([c for _, c in pairs], add_special_tokens=False)["input_ids"]
    return [(p + c, len(p)) for p, c in zip(prompts, completions, strict=True)]


def _batch(rows: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    T = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), T), pad_id)  # (B, T) right-padded
    labels = torch.full((len(rows), T), -100)  # loss on completion tokens only
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, (ids, start) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, start : len(ids)] = input_ids[i, start : len(ids)]
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def _length_batches(rows: list, batch_size: int, rng: random.Random, pool: int = 16) -> list[list]:
    """Batches of similar lengths (half the padding of random batches), in random order."""
    rows = rows[:]
    rng.shuffle(rows)
    batches = []
    for s in range(0, len(rows), batch_size * pool):
        chunk = sorted(rows[s : s + batch_size * pool], key=lambda r: len(r[0]))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


# ---------------------------------------------------------------- model


def make_model(recipe: TinyRecipe, tok: PreTrainedTokenizerFast) -> Qwen2ForCausalLM:
    eos, pad = tok.convert_tokens_to_ids([tiny_tok.IM_END, tiny_tok.PAD])
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_kv_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = [eos, pad]
    model.generation_config.pad_token_id = pad
    return model


def random_model_folder(dest: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A random-init tiny Qwen2 (:func:`make_model`) with a small BPE tokenizer, saved as
    an HF folder (~1 s): the model of tests and reliability harnesses, which need a real
    folder that ``r1zero train`` and ``r1zero eval`` load, but no prior."""
    corpus = [
        tiny_tok.chat_text(messages(TEMPLATES[t], list(p.nums), p.target))
        for p in countdown.generate(50, seed=seed)
        for t in sorted(TEMPLATES)
    ]
    tok = tiny_tok.train_tokenizer(corpus, vocab_size=400)
    torch.manual_seed(seed)
    recipe = TinyRecipe(
        hidden_size=hidden,
        num_layers=layers,
        num_heads=2,
        num_kv_heads=1,
        intermediate_size=2 * hidden,
    )
    model = make_model(recipe, tok)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest, safe_serialization=True)
    tok.save_pretrained(dest)
    return dest


def pretrain(
    model: Qwen2ForCausalLM,
    rows: list[tuple[list[int], int]],
    recipe: TinyRecipe,
    *,
    seed: int,
    pad_id: int,
    log: Callable[[str], None],
    device: str = "cpu",
) -> None:
    """AdamW, linear warmup then cosine decay; each example is seen once."""
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.98), weight_decay=0.01)
    batches = _length_batches(rows, recipe.batch_size, random.Random(seed))
    model.train()
    t0 = time.perf_counter()
    for step in range(recipe.steps):
        warm = min(1.0, (step + 1) / recipe.warmup_steps)
        cos = 0.5 * (1 + math.cos(math.pi * step / recipe.steps))
        for g in opt.param_groups:
            g["lr"] = recipe.lr * warm * (0.1 + 0.9 * cos)
        batch = {k: v.to(device) for k, v in _batch(batches[step % len(batches)], pad_id).items()}
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == recipe.steps - 1:
            log(
                f"  step {step:4d}/{recipe.steps}  loss {loss.item():.3f}  {time.perf_counter() - t0:5.1f}s"
            )


# ---------------------------------------------------------------- build


def build_into(
    folder: Path, recipe: TinyRecipe, *, seed: int, log: Callable[[str], None], device: str = "cpu"
) -> None:
    """Build the model into ``folder`` (no caching, no atomicity)."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    n = recipe.steps * recipe.batch_size
    pairs = _examples(n, seed=seed + PRETRAIN_SEED_OFFSET, mix=recipe.mix)
    full = _examples(
        recipe.tokenizer_problems, seed=seed + PRETRAIN_SEED_OFFSET - 1, mix=recipe.mix
    )
    corpus = (p + c for p, c in full)
    tok = tiny_tok.train_tokenizer(corpus, vocab_size=recipe.vocab_size)
    rows = _encode(tok, pairs)
    log(f"tiny: {n} traces, vocab {len(tok)}, {time.perf_counter() - t0:.1f}s")
    model = make_model(recipe, tok)
    log(
        f"tiny: Qwen2 {recipe.num_layers}x{recipe.hidden_size}, {model.num_parameters() / 1e6:.2f}M params"
    )
    pretrain(
        model.to(device), rows, recipe, seed=seed, pad_id=tok.pad_token_id, log=log, device=device
    )
    model.cpu().eval()
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    info = {"seed": seed, "recipe": dataclasses.asdict(recipe), "data": TINY_DATA}
    info["build_seconds"] = round(time.perf_counter() - t0, 1)
    (folder / "r1zero_tiny.json").write_text(json.dumps(info, indent=2))


def build_tiny(
    *,
    seed: int = 0,
    cache_dir: Path | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
    **overrides,
) -> Path:
    """The tiny model's folder, built first if missing (~2.5 minutes on 2 CPU cores).

    ``overrides`` change :class:`TinyRecipe` fields (tests build a throwaway model with
    ``steps=4``). ``cache_dir`` defaults to ``$R1ZERO_CACHE`` or ``~/.cache/r1zero``.
    Same seed and recipe on the same machine: the same weights, bit for bit.
    """
    recipe = dataclasses.replace(TinyRecipe(), **overrides)
    root = _cache_root(cache_dir)
    folder = root / f"tiny-{recipe_hash(recipe, seed)}"
    if folder.is_dir() and not force:
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=root))
    try:
        build_into(tmp, recipe, seed=seed, log=log)
        if folder.is_dir():  # force: replace the old copy
            shutil.rmtree(folder)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same build first: same weights
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"tiny: built {folder}")
    return folder
