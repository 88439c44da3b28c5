"""Regional torch.compile in training: same log-probs and gradients as eager, under
gradient checkpointing (CPU inductor; slow because it compiles)."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2ForCausalLM

from helpers import random_qwen2
from r1zero.compile import compilable_blocks, compile_blocks, compiled_blocks
from r1zero.train.update import MicroBatch, sequence_logprobs


def _model() -> Qwen2ForCausalLM:
    model = random_qwen2(vocab=64, hidden=32, intermediate=64, layers=3, max_positions=128)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.train()


def _loss_and_grads(model, mb):
    model.zero_grad(set_to_none=True)
    logprobs, _ = sequence_logprobs(model, mb, temperature=1.0, chunk_size=16)
    loss = (logprobs * mb.completion_mask).sum()
    loss.backward()
    return logprobs.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_blocks_are_norms_and_mlps_not_attention():
    model = _model()
    names = {type(b).__name__ for b in compilable_blocks(model)}
    assert names == {"Qwen2RMSNorm", "Qwen2MLP"}
    assert len(compilable_blocks(model)) == 3 * 3


@pytest.mark.slow
def test_compiled_training_matches_eager():
    g = torch.Generator().manual_seed(1)
    mb = MicroBatch(
        prompt_ids=torch.randint(1, 64, (3, 5), generator=g),
        prompt_mask=torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]),
        completion_ids=torch.randint(1, 64, (3, 7), generator=g),
        completion_mask=torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 6 + [0]]),
        index=torch.arange(3),
    )
    eager = _model()
    lp_eager, grads_eager = _loss_and_grads(eager, mb)
    compiled = _model()
    torch._dynamo.reset()
    compile_blocks(compiled)
    lp, grads = _loss_and_grads(compiled, mb)
    torch.testing.assert_close(lp, lp_eager, rtol=1e-5, atol=1e-5)
    for name, grad in grads_eager.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)
    # the rollout's own context leaves training's routing in place afterwards
    before = [b._compiled_call_impl for b in compilable_blocks(compiled)]
    with compiled_blocks(compiled, {}):
        pass
    assert [b._compiled_call_impl for b in compilable_blocks(compiled)] == before
