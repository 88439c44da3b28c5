"""The ``hf`` engines sample exactly what the loss scores (issue 20 item 6).

A model folder whose generation_config.json sets every sampling knob (as Qwen2.5-Instruct's
sets repetition_penalty 1.05, top_k 20, top_p 0.8, temperature 0.7): none of them may leak
into r1zero's rollout. Before the fix, ``generate`` filled every knob the engine left unset
from that file, so samples followed the penalised distribution instead of
softmax(logits / temperature).
"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, GenerationConfig

from helpers import random_qwen2
from r1zero.config import GRPOConfig
from r1zero.rollout import SamplingParams, get_engine
from r1zero.rollout.policy import Policy, sampling_params

VOCAB, EOS, PAD = 16, 1, 0
PROMPT = [2, 3, 4, 2, 3, 5]  # tokens a repetition penalty would push down
MEDDLING = dict(  # everything a generation_config.json can set that changes sampling
    do_sample=True,
    temperature=0.3,
    top_k=3,
    top_p=0.5,
    typical_p=0.5,
    min_p=0.2,
    repetition_penalty=3.0,
    no_repeat_ngram_size=1,
    min_new_tokens=6,
    suppress_tokens=[6],
    begin_suppress_tokens=[7],
    bad_words_ids=[[8]],
    eos_token_id=EOS,
    pad_token_id=PAD,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A random Qwen2 with spread-out logits (lm_head x 8: EOS 5%, prompt tokens 15%) and the
    meddling generation_config."""
    model = random_qwen2(
        vocab=VOCAB, hidden=32, intermediate=64, layers=1, max_positions=64, eos_token_id=EOS
    )
    with torch.no_grad():
        model.lm_head.weight.mul_(8)
    model.generation_config = GenerationConfig(**MEDDLING)
    path = tmp_path_factory.mktemp("meddling")
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model(folder):
    m = AutoModelForCausalLM.from_pretrained(folder)
    assert m.generation_config.repetition_penalty == 3.0  # the file is really read
    return m


def next_token_probs(model, temperature: float, top_k: int) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([PROMPT])).logits[0, -1] / temperature
    if top_k:
        logits = logits.masked_fill(logits < logits.topk(top_k).values[-1], -math.inf)
    return logits.softmax(-1)


def chi_square_p(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's test, bins with fewer than 5 expected merged; p from the upper incomplete
    gamma function (no scipy)."""
    n = counts.sum().item()
    expected = probs.double() * n
    big = expected >= 5
    obs = torch.cat([counts[big].double(), counts[~big].double().sum().view(1)])
    exp = torch.cat([expected[big], expected[~big].sum().view(1)])
    keep = exp > 0
    if (~keep & (obs > 0)).any():
        return 0.0  # a token the distribution forbids was sampled
    stat = ((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()
    df = int(keep.sum()) - 1
    return torch.special.gammaincc(torch.tensor(df / 2.0), stat / 2).item()


@pytest.mark.parametrize("engine", ["hf", "hf_static"])
@pytest.mark.parametrize("temperature,top_k", [(1.0, 0), (0.7, 7)])
def test_first_token_follows_softmax_of_logits_over_temperature(model, engine, temperature, top_k):
    """6,000 first tokens against the trainer's distribution: EOS included (min_new_tokens
    would forbid it), prompt tokens at full probability (a repetition penalty lowers them).
    On the old engine p was 0 for every case here."""
    torch.manual_seed(0)
    n = 6000
    params = SamplingParams(
        max_new_tokens=1,
        temperature=temperature,
        top_k=top_k,
        eos_token_ids=(EOS,),
        pad_token_id=PAD,
    )
    ids = torch.tensor([PROMPT] * n)
    batch = get_engine(engine).generate(model, ids, torch.ones_like(ids), params)
    counts = torch.bincount(batch.completion_ids[:, 0], minlength=VOCAB)
    probs = next_token_probs(model, temperature, top_k)
    assert probs[EOS] > 0.01 and probs[PROMPT].sum() > 0.1  # the check has teeth
    assert chi_square_p(counts, probs) > 1e-3
    penalised = probs.clone()
    penalised[PROMPT] /= 3
    assert chi_square_p(counts, penalised / penalised.sum()) < 1e-6  # and can tell


def test_greedy_is_the_plain_argmax_chain(model):
    """No repetition penalty, no n-gram ban, no suppressed or banned words when greedy."""
    params = SamplingParams(max_new_tokens=8, do_sample=False, eos_token_ids=(), pad_token_id=PAD)
    ids = torch.tensor([PROMPT])
    out = get_engine("hf").generate(model, ids, torch.ones_like(ids), params)
    seq = list(PROMPT)
    with torch.no_grad():
        for _ in range(8):
            seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    assert out.completion_ids[0].tolist() == seq[len(PROMPT) :]
    assert len(set(seq[len(PROMPT) :])) < 8 or set(seq) & {6, 7, 8}  # the ban would matter


def test_model_generation_config_is_restored(model):
    params = SamplingParams(max_new_tokens=2, eos_token_ids=(EOS,), pad_token_id=PAD)
    ids = torch.tensor([PROMPT])
    get_engine("hf").generate(model, ids, torch.ones_like(ids), params)
    assert model.generation_config.repetition_penalty == 3.0


def test_repetition_penalty_is_applied_when_asked(model):
    """TRL's repetition_penalty key reaches generate: prompt tokens get rarer."""
    torch.manual_seed(0)
    ids = torch.tensor([PROMPT] * 3000)
    counts = {}
    for penalty in (1.0, 3.0):
        params = SamplingParams(
            max_new_tokens=1, repetition_penalty=penalty, eos_token_ids=(EOS,), pad_token_id=PAD
        )
        first = get_engine("hf").generate(model, ids, torch.ones_like(ids), params)
        counts[penalty] = torch.isin(first.completion_ids[:, 0], torch.tensor(PROMPT)).sum()
    assert counts[3.0] < 0.8 * counts[1.0]


def test_sampling_params_from_config():
    """top_k empty -> 0 (off; None would become transformers' default 50 or the model's);
    repetition_penalty passes through."""
    policy = Policy(None, type("T", (), {"pad_token_id": PAD})(), None, None, None, (EOS,))
    p = sampling_params(GRPOConfig(top_k=None), policy)
    assert p.top_k == 0 and p.repetition_penalty == 1.0
    p = sampling_params(GRPOConfig(top_k=7, repetition_penalty=1.1), policy)
    assert p.top_k == 7 and p.repetition_penalty == 1.1


def test_fast_engine_config_refuses_a_repetition_penalty():
    from r1zero.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="needs rollout_engine: hf or hf_static"):
        from_dict({"repetition_penalty": 1.05, "rollout_engine": "fast"})
    with pytest.raises(ConfigError, match="needs rollout_engine: hf or hf_static"):
        from_dict({"repetition_penalty": 1.05})  # auto is fast on a GPU
    assert from_dict({"repetition_penalty": 1.05, "rollout_engine": "hf"}).grpo.rollout_engine


def test_cli_eval_ignores_min_new_tokens_in_generation_config(tiny_model_dir, tmp_path):
    """The issue's CLI case: min_new_tokens in a model's generation_config.json lengthened
    every completion of ``r1zero eval`` / ``train --rollout_engine hf``. Here every token
    stops a completion, so without the leak each is one token long; with it, 12."""
    from typer.testing import CliRunner

    from r1zero.cli import app
    from r1zero.task.data import generate_rows, write_jsonl

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    gen = json.loads((folder / "generation_config.json").read_text())
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    gen |= {"min_new_tokens": 12, "eos_token_id": list(range(vocab))}  # every token stops
    (folder / "generation_config.json").write_text(json.dumps(gen))
    data = write_jsonl(generate_rows(4, seed=3), tmp_path / "data.jsonl")
    out = tmp_path / "eval.json"
    args = [str(folder), "--data", str(data), "--n", "4", "--k", "2", "--max-new-tokens", "16"]
    res = CliRunner().invoke(app, ["eval", *args, "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["mean_length"] == 1
