"""The gated LoRA training pieces (needs torch + peft: run with ~/.cache/brickyard/venv/bin/python -m pytest)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

if os.environ.get("CI") == "true":  # scripts/test runs these with the venv of scripts/setup-python: never skip there
    import peft  # noqa: F401
    import torch
else:
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")

from tasksuite import lora, model, tasks  # noqa: E402


def tiny_peft_model():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = model.build_tokenizer()
    net = LlamaForCausalLM(model.config(len(tokenizer), hidden=16, layers=1))
    config = LoraConfig(r=2, lora_alpha=4, target_modules=lora.TARGET_MODULES, init_lora_weights=True)
    return get_peft_model(net, config), tokenizer


def test_penalty_is_the_mean_square_lora_output_on_the_chosen_rows_only():
    peft_model, tokenizer = tiny_peft_model()
    ids, mask, _ = model.encode(tokenizer, tasks.examples("rev", 3, seed=0) + tasks.examples("inc", 2, seed=0))
    penalty = lora.LoraOutputPenalty(peft_model, weight=2.0)
    peft_model(input_ids=ids, attention_mask=mask)
    assert float(penalty(slice(3, 5), mask)) == 0.0  # B = 0 at initialisation: the LoRA changes nothing
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_()
    # independent computation: s·B·A·x of every LoRA module on rows 3..4, non-padding positions
    expected, inputs = [], {}
    hooks = [m.register_forward_hook(lambda mod, i, o: inputs.__setitem__(mod, i[0]))
             for m in peft_model.modules() if hasattr(m, "lora_A") and isinstance(m.lora_A, torch.nn.ModuleDict)]
    peft_model(input_ids=ids, attention_mask=mask)
    for h in hooks:
        h.remove()
    for layer, x in inputs.items():
        delta = layer.lora_B["default"](layer.lora_A["default"](x)) * layer.scaling["default"]
        rows, keep = delta[3:5], mask[3:5].unsqueeze(-1).float()
        expected.append(((rows ** 2) * keep).sum() / (keep.sum() * delta.shape[-1]))
    got = penalty(slice(3, 5), mask)
    assert torch.allclose(got, 2.0 * torch.stack(expected).mean(), rtol=1e-5)
    assert not penalty.outputs  # cleared for the next step
    penalty.close()
    peft_model(input_ids=ids, attention_mask=mask)
    assert not penalty.outputs  # hooks removed


def test_training_with_replay_and_penalty_moves_the_weights_and_returns_a_finite_loss():
    peft_model, tokenizer = tiny_peft_model()
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    penalty = lora.LoraOutputPenalty(peft_model, weight=1.0)
    loss = model.train(peft_model, tokenizer, tasks.examples("rev", 20, seed=0), steps=3, lr=1e-2, batch=4, seed=0,
                       replay=tasks.copy_examples("inc", 20, seed=0), replay_batch=4, penalty=penalty)
    penalty.close()
    assert loss == loss and loss > 0
    assert any(not torch.equal(before[n], p) for n, p in peft_model.named_parameters() if p.requires_grad)
