"""FastEngine against HF generate on a tiny random Qwen2, on CPU (eager path, no graphs)."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2ForCausalLM

from helpers import random_qwen2
from r1zero.rollout import get_engine
from r1zero.rollout.base import SamplingParams
from r1zero.rollout.fast import ATTENTION_NAME, FastEngine, sample
from r1zero.rollout.hf import HFGenerateEngine

PAD = 0
MAX_NEW = 24


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A tiny model gains nothing from threads, and on a busy machine they spin (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def qwen2(layers: int = 2) -> Qwen2ForCausalLM:
    return random_qwen2(
        vocab=100, hidden=64, intermediate=128, layers=layers, max_positions=256
    ).eval()


@pytest.fixture(scope="module")
def model() -> Qwen2ForCausalLM:
    return qwen2()


def left_padded(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P) random prompts of the given lengths, left-padded with PAD."""
    g = torch.Generator().manual_seed(seed)
    P = max(lengths)
    ids = torch.randint(3, 100, (len(lengths), P), generator=g)
    mask = (torch.arange(P) >= P - torch.tensor(lengths)[:, None]).long()  # (B, P)
    return ids.masked_fill(mask == 0, PAD), mask


@pytest.fixture(scope="module")
def prompts() -> tuple[torch.Tensor, torch.Tensor]:
    return left_padded([9, 4, 6, 1, 7])


def greedy(**kw) -> SamplingParams:
    return SamplingParams(max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=PAD, **kw)


def assert_same_batch(a, b) -> None:
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert torch.equal(a.completion_mask, b.completion_mask)
    assert torch.equal(a.truncated, b.truncated)


def test_registered_as_fast():
    assert isinstance(get_engine("fast"), FastEngine)


@pytest.mark.parametrize("window", [128, 8])  # 8: attention windows grow during decode
def test_greedy_matches_hf_generate(model, prompts, window):
    ids, mask = prompts
    assert_same_batch(
        FastEngine(cache_len_multiple=window).generate(model, ids, mask, greedy()),
        HFGenerateEngine().generate(model, ids, mask, greedy()),
    )


def test_greedy_with_eos_matches_hf_generate(model, prompts):
    ids, mask = prompts
    free = HFGenerateEngine().generate(model, ids, mask, greedy()).completion_ids
    eos = (int(free[0, 3]), int(free[2, 5]))  # rows 0 and 2 stop early; others may run on
    ref = HFGenerateEngine().generate(model, ids, mask, greedy(eos_token_ids=eos))
    out = FastEngine().generate(model, ids, mask, greedy(eos_token_ids=eos))
    assert ref.truncated.tolist().count(False) >= 2
    assert_same_batch(out, ref)


def test_all_rows_stop_early_trims_like_hf(model, prompts):
    ids, mask = prompts
    free = HFGenerateEngine().generate(model, ids, mask, greedy()).completion_ids
    eos = tuple(int(t) for t in free[:, 2])  # every row stops by its third token
    ref = HFGenerateEngine().generate(model, ids, mask, greedy(eos_token_ids=eos))
    out = FastEngine(stop_check_interval=4).generate(model, ids, mask, greedy(eos_token_ids=eos))
    assert not out.truncated.any() and out.completion_ids.shape[1] <= 3
    assert_same_batch(out, ref)


def test_reused_buffers_give_same_output(model, prompts):
    ids, mask = prompts
    engine = FastEngine()
    long_ids, long_mask = left_padded([12, 3, 8, 11, 2], seed=2)
    engine.generate(model, long_ids, long_mask, greedy())  # allocates a longer cache first
    assert_same_batch(
        engine.generate(model, ids, mask, greedy()),
        FastEngine().generate(model, ids, mask, greedy()),
    )


def test_sampling_reproducible_with_seeded_generator(model, prompts):
    ids, mask = prompts
    params = SamplingParams(max_new_tokens=MAX_NEW, temperature=0.9, top_p=0.95, pad_token_id=PAD)
    engine = FastEngine()
    a = engine.generate(model, ids, mask, params, torch.Generator().manual_seed(7))
    b = FastEngine().generate(model, ids, mask, params, torch.Generator().manual_seed(7))
    c = engine.generate(model, ids, mask, params, torch.Generator().manual_seed(8))
    d = engine.generate(model, ids, mask, params, torch.Generator().manual_seed(7))  # warm engine
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert torch.equal(a.completion_ids, d.completion_ids)
    assert not torch.equal(a.completion_ids, c.completion_ids)


@pytest.mark.parametrize("kw", [{"top_k": 1}, {"top_p": 1e-4}, {"temperature": 1e-6}])
def test_degenerate_sampling_equals_greedy(model, prompts, kw):
    ids, mask = prompts
    params = SamplingParams(max_new_tokens=MAX_NEW, pad_token_id=PAD, **kw)
    out = FastEngine().generate(model, ids, mask, params, torch.Generator().manual_seed(3))
    assert torch.equal(
        out.completion_ids, FastEngine().generate(model, ids, mask, greedy()).completion_ids
    )


def test_top_k_and_top_p_sample_only_allowed_tokens():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])  # top-2 = {1, 3}, mass 0.8
    logits = probs.log().expand(4096, 4)  # (B, V)
    g = torch.Generator().manual_seed(0)
    for kw in [{"top_k": 2}, {"top_p": 0.75}]:
        params = SamplingParams(max_new_tokens=1, **kw)
        tokens = sample(logits, params, g)
        assert set(tokens.tolist()) == {1, 3}
        assert abs((tokens == 1).float().mean().item() - 0.5 / 0.8) < 0.04  # renormalised
    full = sample(logits, SamplingParams(max_new_tokens=1), g)
    counts = torch.bincount(full, minlength=4).float() / len(full)
    assert torch.allclose(counts, probs, atol=0.03)  # the exponential race draws from probs


def test_ignore_eos_gives_full_length(model, prompts):
    ids, mask = prompts
    free = FastEngine().generate(model, ids, mask, greedy()).completion_ids
    eos = tuple(int(t) for t in free[:, 0])  # every row would stop at once
    out = FastEngine().generate(model, ids, mask, greedy(eos_token_ids=eos, ignore_eos=True))
    assert out.completion_ids.shape == (ids.shape[0], MAX_NEW)
    assert out.completion_mask.all() and out.truncated.all()
    assert torch.equal(out.completion_ids, free)


def test_restores_train_mode_and_attention(model, prompts):
    ids, mask = prompts
    model.train()
    try:
        FastEngine().generate(model, ids, mask, greedy())
        assert model.training
        assert model.config._attn_implementation != ATTENTION_NAME
    finally:
        model.eval()


def test_peft_wrapped_model_matches_hf_generate(model, prompts):
    peft = pytest.importorskip("peft")
    ids, mask = prompts
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    wrapped = peft.get_peft_model(model, config).eval()
    try:
        assert_same_batch(
            FastEngine().generate(wrapped, ids, mask, greedy()),
            HFGenerateEngine().generate(wrapped, ids, mask, greedy()),
        )
    finally:
        wrapped.unload()  # leave the shared fixture model as it was


@pytest.mark.slow
def test_compiled_layers_match_hf_generate_and_compile_once(prompts):
    """Regional compilation of the HF forward (``own_forward=False``): the layers' norms and
    MLPs compile once for all layers (not once per layer), greedy output unchanged,
    everything eager again after the call."""
    torch._dynamo.reset()
    model = qwen2(layers=4)
    ids, mask = prompts
    before = dict(torch._dynamo.utils.counters["stats"])
    engine = FastEngine(compile=True, cache_len_multiple=128, own_forward=False)
    fast = engine.generate(model, ids, mask, greedy())
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"] - before.get("unique_graphs", 0)
    assert_same_batch(fast, HFGenerateEngine().generate(model, ids, mask, greedy()))
    assert 1 <= graphs <= 3  # norm, MLP, rotary embedding, whatever the number of layers
    assert all(m._compiled_call_impl is None for m in model.modules())
    from transformers.models.qwen2 import modeling_qwen2

    assert not hasattr(modeling_qwen2.apply_rotary_pos_emb, "_torchdynamo_orig_callable")


@pytest.mark.slow
@pytest.mark.parametrize("layers", [2, 4])
def test_own_forward_compiles_once_for_every_layer(ragged, layers):
    """The own decode step compiled: its graphs do not grow with the number of layers (the
    weights are arguments), and greedy output still equals HF generate with rows ending
    early (the batch compacts, so several batch sizes run through the same graphs)."""
    torch._dynamo.reset()
    model = qwen2(layers=layers)
    ids, mask = ragged
    params = greedy(eos_token_ids=early_eos(model, ids, mask))
    before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    engine = FastEngine(compile=True, stop_check_interval=2, cache_len_multiple=8)
    out = engine.generate(model, ids, mask, params)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"] - before
    assert engine._weights is not None and min(engine.last_batch_sizes) < 8
    assert_same_batch(out, HFGenerateEngine().generate(model, ids, mask, params))
    assert 3 <= graphs <= 6  # pre (first layer, the others), attention + MLP, final norm


# ----------------------------------------------------------------------------- finished rows
@pytest.fixture(scope="module")
def ragged() -> tuple[torch.Tensor, torch.Tensor]:
    return left_padded([9, 4, 6, 1, 7, 12, 3, 8], seed=5)


def early_eos(model, ids, mask) -> tuple[int, ...]:
    """EOS ids that end row 0 at its first token and row 2 at its sixth (others vary)."""
    free = HFGenerateEngine().generate(model, ids, mask, greedy()).completion_ids
    return (int(free[0, 0]), int(free[2, 5]), int(free[5, 10]))


def test_compacting_batch_matches_hf_generate(model, ragged):
    """Rows end at the first token, early, late or never (max length): the batch shrinks
    8 -> 4 -> 2 and every row's tokens still equal HF generate's."""
    ids, mask = ragged
    params = greedy(eos_token_ids=early_eos(model, ids, mask))
    ref = HFGenerateEngine().generate(model, ids, mask, params)
    engine = FastEngine(stop_check_interval=2)
    out = engine.generate(model, ids, mask, params)
    lengths = ref.completion_lengths.tolist()
    assert lengths[0] == 1 and ref.truncated.any() and not ref.truncated.all()
    assert_same_batch(out, ref)
    assert engine.last_batch_sizes[0] == 8 and min(engine.last_batch_sizes) < 8
    assert engine.last_batch_sizes == sorted(engine.last_batch_sizes, reverse=True)


@pytest.mark.parametrize("impl", ["matmul", "auto"])
def test_other_decode_attentions_match_hf_generate(model, ragged, impl):
    ids, mask = ragged
    params = greedy(eos_token_ids=early_eos(model, ids, mask))
    out = FastEngine(stop_check_interval=2, decode_attention=impl, cache_len_multiple=8)
    assert_same_batch(
        out.generate(model, ids, mask, params),
        HFGenerateEngine().generate(model, ids, mask, params),
    )


def test_decode_attentions_agree_with_a_ragged_mask():
    from r1zero.rollout import kv

    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 8, 1, 16, generator=g)  # 3 rows, 8 query heads over 2 KV heads
    cache = torch.randn(2, 3, 2, 640, 16, generator=g)
    k, v = cache[0, :, :, :512], cache[1, :, :, :512]  # a window: views, as the engine's
    valid = torch.arange(512) < torch.tensor([[5], [300], [512]])  # (3, 512)
    mask = torch.zeros(3, 512).masked_fill(~valid, float("-inf"))[:, None, None, :]
    want, _ = kv.decode_attention(q, k, v, mask, 0.25)
    for impl in ("matmul", "auto"):
        got, _ = kv.DECODE_ATTENTION[impl](q, k, v, mask, 0.25)
        assert torch.allclose(got, want, atol=1e-5), impl


def test_compaction_changes_no_greedy_token(model, ragged):
    ids, mask = ragged
    params = greedy(eos_token_ids=early_eos(model, ids, mask))
    assert_same_batch(
        FastEngine(stop_check_interval=2, compact=False).generate(model, ids, mask, params),
        FastEngine(stop_check_interval=2).generate(model, ids, mask, params),
    )


def test_per_row_limits_cut_each_row_and_shrink_the_batch(model, ragged):
    ids, mask = ragged
    full = FastEngine().generate(model, ids, mask, greedy(ignore_eos=True))
    limits = torch.tensor([1, 3, 24, 5, 2, 9, 17, 4])
    engine = FastEngine(stop_check_interval=2)
    out = engine.generate(model, ids, mask, greedy(ignore_eos=True), max_new_tokens_per_row=limits)
    assert out.completion_lengths.tolist() == limits.tolist()
    for row, n in enumerate(limits.tolist()):
        assert torch.equal(out.completion_ids[row, :n], full.completion_ids[row, :n])
        assert (out.completion_ids[row, n:] == PAD).all()
    assert out.truncated.all()
    assert engine.last_batch_sizes[-1] == 2  # the 24-token row (and a filler) at the end


def test_sampling_with_compaction_is_seeded(model, ragged):
    ids, mask = ragged
    params = SamplingParams(
        max_new_tokens=MAX_NEW, temperature=1.5, pad_token_id=PAD, eos_token_ids=(5, 7, 11, 13)
    )
    engine = FastEngine(stop_check_interval=2)
    a = engine.generate(model, ids, mask, params, torch.Generator().manual_seed(1))
    sizes = engine.last_batch_sizes
    b = FastEngine(stop_check_interval=2).generate(
        model, ids, mask, params, torch.Generator().manual_seed(1)
    )
    c = engine.generate(model, ids, mask, params, torch.Generator().manual_seed(2))
    assert min(sizes) < 8  # rows ended and the batch compacted
    assert_same_batch(a, b)
    assert not torch.equal(a.completion_ids, c.completion_ids)


# ----------------------------------------------------------------------------- memory
def test_small_memory_budget_splits_the_rollout(model, ragged):
    """A budget of three rows' worth: sub-batches of 3, 3, 2, the same greedy output."""
    from r1zero.rollout import kv

    ids, mask = ragged
    params = greedy(eos_token_ids=early_eos(model, ids, mask))
    engine = FastEngine(stop_check_interval=2)
    L = engine._cache_len(ids.shape[1], MAX_NEW)
    per_row = kv.bytes_per_row(model.config, torch.float32, ids.shape[1], L)
    engine.memory_budget = 3 * per_row + per_row // 2
    out = engine.generate(model, ids, mask, params)
    assert engine.last_split == [3, 3, 2]
    assert_same_batch(out, FastEngine().generate(model, ids, mask, params))


def test_budget_below_one_row_is_a_clear_error(model, prompts):
    ids, mask = prompts
    with pytest.raises(MemoryError, match="lower max_completion_length"):
        FastEngine(memory_budget=1000).generate(model, ids, mask, greedy())


def test_kv_bytes_of_qwen25_3b():
    """36 layers x 2 KV heads x 128 dims x K and V x 2 bytes: 36 KiB a token; 128 x 4,246
    tokens about 20 GB (the issue's figure)."""
    from r1zero.bench.model import load_shape, shape_config
    from r1zero.rollout import kv

    per_token = kv.kv_bytes_per_token(shape_config(load_shape("qwen2.5-3b")), torch.bfloat16)
    assert per_token == 36 * 1024
    assert 19e9 < 128 * 4246 * per_token < 21e9


def test_cuda_budget_is_free_memory_within_the_cap(monkeypatch):
    """The default budget on CUDA, with the allocator's figures faked: 0.9 x (free + cached) -
    2 GiB, and never more than kv_fraction of the process's cap."""
    from types import SimpleNamespace

    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (100 * gib, 141 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda d=None: 30 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d=None: 28 * gib)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda d=None: SimpleNamespace(total_memory=141 * gib)
    )
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda d=None: 1.0)
    cuda = torch.device("cuda")
    assert FastEngine(kv_fraction=1.0)._budget(cuda) == int(0.9 * 102 * gib) - 2 * gib
    assert FastEngine()._budget(cuda) == int(0.4 * 141 * gib)  # kv_fraction 0.4 binds
    # a 22 GiB cap (a 24 GB card) with 10 GiB reserved, 8 allocated: 12 free + 2 cached
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda d=None: 22 / 141)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda d=None: 10 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d=None: 8 * gib)
    assert FastEngine(kv_fraction=1.0)._budget(cuda) == int(0.9 * 14 * gib) - 2 * gib
    assert abs(FastEngine()._budget(cuda) - 0.4 * 22 * gib) <= 1


def test_mid_rollout_warm_up_leaves_no_trace(model, ragged, monkeypatch):
    """On CUDA a graph is captured when first needed, after a warm-up that really decodes;
    emulated on CPU (warm-up, then the eager steps stand in for the replay), sampling with
    compaction gives exactly the tokens of the engine without graphs: the warm-up's state and
    random numbers are undone."""
    from r1zero.rollout import decode, fast

    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: object())
    monkeypatch.setattr(
        fast,
        "capture_cuda_graph",
        lambda fn, gen, pool, state, b: decode.warm_up(fn, gen, state, b) or fn,
    )
    ids, mask = ragged
    params = SamplingParams(
        max_new_tokens=MAX_NEW, temperature=1.5, pad_token_id=PAD, eos_token_ids=(5, 7, 11, 13)
    )
    graphed = FastEngine(stop_check_interval=2, cuda_graph=True)
    a = graphed.generate(model, ids, mask, params, torch.Generator().manual_seed(4))
    b = FastEngine(stop_check_interval=2).generate(
        model, ids, mask, params, torch.Generator().manual_seed(4)
    )
    assert len(graphed._graphs) == len(set(graphed.last_batch_sizes)) >= 2  # one per batch size
    assert_same_batch(a, b)


# ----------------------------------------------------------------------------- own forward
def test_own_forward_serves_qwen2_and_the_hf_forward_still_matches(model, ragged):
    """Qwen2 decodes through r1zero.rollout.llama; the HF-forward path (own_forward=False)
    gives the same tokens, both equal to HF generate with rows ending early."""
    ids, mask = ragged
    params = greedy(eos_token_ids=early_eos(model, ids, mask))
    ref = HFGenerateEngine().generate(model, ids, mask, params)
    own, hf = (
        FastEngine(stop_check_interval=2),
        FastEngine(stop_check_interval=2, own_forward=False),
    )
    assert_same_batch(own.generate(model, ids, mask, params), ref)
    assert_same_batch(hf.generate(model, ids, mask, params), ref)
    assert own._weights is not None and hf._weights is None


def test_fused_qkv_buffers_follow_weight_updates(ragged):
    """Training changes q/k/v in place between rollouts: the engine's fused copy is rewritten
    before each one, so the second rollout samples from the new weights (equal to HF generate
    on them), not from the first rollout's."""
    model = qwen2()
    ids, mask = ragged
    engine = FastEngine(stop_check_interval=2)
    first = engine.generate(model, ids, mask, greedy())
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.weight.add_(torch.randn(proj.weight.shape, generator=g) * 0.5)
                proj.bias.add_(torch.randn(proj.bias.shape, generator=g) * 0.5)
    second = engine.generate(model, ids, mask, greedy())
    assert not torch.equal(first.completion_ids, second.completion_ids)
    assert_same_batch(second, HFGenerateEngine().generate(model, ids, mask, greedy()))


def test_models_the_own_forward_does_not_cover_keep_the_hf_forward(model):
    """PEFT-wrapped projections and other architectures: llama.supported says no."""
    from peft import LoraConfig, get_peft_model

    from r1zero.rollout import llama

    assert llama.supported(model)
    biased = qwen2(layers=1)
    biased.model.layers[0].mlp.down_proj.bias = torch.nn.Parameter(torch.zeros(64))
    assert not llama.supported(biased)  # the own step has no MLP bias
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    try:
        assert not llama.supported(wrapped)
    finally:
        wrapped.unload()


def test_a_reassigned_weight_drops_the_graphs_and_decode_weights(ragged):
    """A parameter given new storage (``param.data = ...``, as some loaders do) is not the
    memory that captured graphs and the own step's weight references point to: the engine
    notices and rebuilds, so it samples from the new weights."""
    model = qwen2()
    ids, mask = ragged
    engine = FastEngine(stop_check_interval=2)
    engine.generate(model, ids, mask, greedy())
    down = model.model.layers[1].mlp.down_proj
    g = torch.Generator().manual_seed(4)
    down.weight.data = down.weight.detach() + torch.randn(down.weight.shape, generator=g)
    assert_same_batch(
        engine.generate(model, ids, mask, greedy()),
        HFGenerateEngine().generate(model, ids, mask, greedy()),
    )


def test_a_model_that_drops_the_mask_mapping_is_a_clear_error(ragged):
    """Llama's forward (transformers 5.17) builds its own mask from the engine's mapping and
    loses it: the prefill would attend non-causally. The engine says so instead."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from r1zero.rollout import llama

    config = LlamaConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    assert not llama.supported(model)
    ids, mask = ragged
    with pytest.raises(NotImplementedError, match="rollout_engine: hf"):
        FastEngine().generate(model, ids, mask, greedy())
