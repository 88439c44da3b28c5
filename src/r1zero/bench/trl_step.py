"""TRL's GRPOTrainer on r1zero's reference workload, for a side-by-side step time.

Run as ``python -m r1zero.bench.trl_step --shape qwen2.5-3b --out trl.json`` (``r1zero bench``
does, in a subprocess, so each trainer's peak memory is its own). Needs ``trl`` (1.16).

Same work as ``r1zero bench``'s step: a random-weight model of the shape (saved to a temp folder,
since TRL loads the policy and the reference by path), 16 prompts x 8 completions per optimizer
step (TRL >= 0.15 counts completions: per_device_train_batch_size 16 x gradient_accumulation 8,
one generation batch of 128 per step), prompts of exactly 150 tokens (a word-level tokenizer, one
token per word), completions forced to 512 tokens (``min_new_tokens``), beta 0.001, bf16,
gradient checkpointing, HF ``generate`` (no vLLM), a constant reward. Steps 2.. are timed.

``--workload tutorial`` gives completion i of every generation batch the bench's forced length
``lengths[i]`` (:func:`r1zero.bench.workloads.make`): a logits processor bans EOS before it and
forces EOS at it, so TRL generates, masks and trains exactly those lengths (cap 4,096).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

from r1zero.bench.model import build_model, load_shape
from r1zero.bench.workloads import make

GIB = 2**30


def word_tokenizer(shape: dict):
    """One token per whitespace-separated word ``w<id>``; the shape's BOS/EOS ids are special."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    V, bos, eos = shape["vocab_size"], shape["bos_token_id"], shape["eos_token_id"]
    vocab = {f"w{i}": i for i in range(V)}
    vocab.pop(f"w{bos}"), vocab.pop(f"w{eos}")
    vocab |= {"<|endoftext|>": bos, "<|im_end|>": eos}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left"
    )


def prompts(n: int, length: int, shape: dict, seed: int) -> list[str]:
    rng = random.Random(seed)
    special = {shape["bos_token_id"], shape["eos_token_id"]}
    ids = [i for i in range(min(shape["vocab_size"], 50_000)) if i not in special]
    return [" ".join(f"w{rng.choice(ids)}" for _ in range(length)) for _ in range(n)]


def constant_reward(completions, **kwargs) -> list[float]:
    return [1.0] * len(completions)


def step_timer(device: torch.device):
    """A TrainerCallback that records the (device-synchronised) end time of every step."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.marks: list[float] = []

        def _mark(self) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            self.marks.append(time.perf_counter())

        def on_train_begin(self, args, state, control, **kwargs):
            self._mark()

        def on_step_end(self, args, state, control, **kwargs):
            self._mark()

    return StepTimer()


def forced_eos_processor(lengths: list[int], eos: int):
    """A LogitsProcessor for one ``generate`` call: row i may not end before ``lengths[i]``
    tokens and must end there."""
    from transformers import LogitsProcessor

    class ForcedEOS(LogitsProcessor):
        start: int | None = None  # the (padded) prompt length, seen at the first call

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            if self.start is None:
                self.start = input_ids.shape[1]
            made = input_ids.shape[1] - self.start  # tokens generated so far
            want = torch.tensor([lengths[i % len(lengths)] for i in range(scores.shape[0])])
            want = want.to(scores.device)
            scores[:, eos] = torch.where(want - 1 > made, float("-inf"), scores[:, eos])
            at = want - 1 == made  # (B,) rows whose last token is this one
            scores[at] = torch.where(
                torch.arange(scores.shape[1], device=scores.device) == eos, 0.0, float("-inf")
            )
            return scores

    return ForcedEOS()


def instrument_generate(lengths: list[int], eos: int, progress: Path, device) -> None:
    """Route every ``generate`` call of this process through :func:`forced_eos_processor`
    (when ``lengths``) and write each call's seconds to ``progress`` as it ends, so that a run
    killed by the bench's timeout still tells how long TRL's generation took."""
    from transformers import GenerationMixin, LogitsProcessorList

    original, seconds = GenerationMixin.generate, []

    def generate(self, *args, **kwargs):
        if lengths:
            extra = LogitsProcessorList([forced_eos_processor(lengths, eos)])
            kwargs["logits_processor"] = extra + list(kwargs.get("logits_processor") or [])
        t0 = time.perf_counter()
        out = original(self, *args, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - t0)
        progress.write_text(json.dumps({"generate_s": seconds}))
        return out

    GenerationMixin.generate = generate


def trainer_args(a: argparse.Namespace, workdir: Path, on_gpu: bool):
    from trl import GRPOConfig

    seqs = a.prompts * a.num_generations
    forced = {} if a.lengths else {"min_new_tokens": a.completion_len}
    return GRPOConfig(
        output_dir=str(workdir / "trl-out"),
        per_device_train_batch_size=a.micro,
        gradient_accumulation_steps=seqs // a.micro,
        num_generations=a.num_generations,
        max_completion_length=a.completion_len,
        generation_kwargs=forced,
        temperature=1.0,
        beta=0.001,
        learning_rate=5e-7,
        bf16=on_gpu,
        use_cpu=not on_gpu,
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        model_init_kwargs={
            "dtype": "bfloat16" if on_gpu else "float32",
            "attn_implementation": "sdpa",
        },
        use_vllm=False,
        max_steps=a.steps,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        log_completions=False,
        disable_tqdm=True,
        seed=a.seed,
    )


def run(a: argparse.Namespace) -> dict:
    import trl
    from datasets import Dataset
    from trl import GRPOTrainer

    device = torch.device(a.device)
    shape = load_shape(a.shape)
    workdir = Path(a.workdir)
    model_dir = workdir / "model"
    model = build_model(
        shape, device, torch.bfloat16 if device.type == "cuda" else torch.float32, a.seed
    )
    model.save_pretrained(model_dir)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    instrument_generate(a.lengths, shape["eos_token_id"], Path(a.out + ".progress"), device)
    data = Dataset.from_dict({"prompt": prompts(a.prompts * a.steps, a.prompt_len, shape, a.seed)})
    timer = step_timer(device)
    trainer = GRPOTrainer(
        model=str(model_dir),
        reward_funcs=constant_reward,
        args=trainer_args(a, workdir, device.type == "cuda"),
        train_dataset=data,
        processing_class=word_tokenizer(shape),
        callbacks=[timer],
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer.train()
    steps = [b - a_ for a_, b in zip(timer.marks, timer.marks[1:], strict=False)]
    timed = steps[1:] or steps
    return {
        "trl_version": trl.__version__,
        "trl_step_s": statistics.mean(timed),
        "step_times_s": steps,
        "timed_steps": f"2..{len(steps)}" if len(steps) > 1 else "1",
        "trl_peak_gib": torch.cuda.max_memory_allocated(device) / GIB
        if device.type == "cuda"
        else None,
        "workload": a.workload,
        "generate_s": json.loads(Path(a.out + ".progress").read_text())["generate_s"]
        if Path(a.out + ".progress").is_file()
        else None,
        "completion_lengths": a.lengths or None,
        "config": {
            "per_device_train_batch_size": a.micro,
            "gradient_accumulation_steps": a.prompts * a.num_generations // a.micro,
            "num_generations": a.num_generations,
            "prompt_len": a.prompt_len,
            "max_completion_length": a.completion_len,
            "beta": 0.001,
            "use_vllm": False,
            "gradient_checkpointing": True,
            "loss_type": trainer.args.loss_type,
        },
        "log": [h for h in trainer.state.log_history if "loss" in h][-1:],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m r1zero.bench.trl_step", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--shape", default="qwen2.5-3b")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=4, help="optimizer steps; the first is a warm-up")
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--num-generations", type=int, default=8)
    p.add_argument("--prompt-len", type=int, default=150)
    p.add_argument("--completion-len", type=int, default=512)
    p.add_argument(
        "--micro", type=int, default=16, help="per_device_train_batch_size (completions)"
    )
    p.add_argument(
        "--workload", default="reference", help="reference, tutorial or collapse (r1zero bench's)"
    )
    p.add_argument("--quick", action="store_true", help="tiny workload (smoke test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if a.quick:
        a.prompts, a.num_generations, a.prompt_len, a.micro = 2, 4, 12, 4
        a.steps = min(a.steps, 2)
    w = make(a.workload, a.quick)
    a.completion_len, a.lengths = w.completion_len, list(w.lengths)
    result = run(a)
    Path(a.out).write_text(json.dumps(result, indent=1, default=str))
    print(
        json.dumps({k: result[k] for k in ("trl_step_s", "trl_peak_gib", "step_times_s")}),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
