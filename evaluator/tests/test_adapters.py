"""Adapter loading: PEFT's scaling rules, content hashes, the cache, and clear errors for adapters that do not fit."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from brickyard_evaluator.adapters import AdapterCache, content_hash, load_adapter, module_scaling, pattern_key
from brickyard_evaluator.combination import Combiner
from brickyard_evaluator.errors import EvalError
from brickyard_evaluator.model_host import ModelHost


@pytest.mark.parametrize("name", ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"])
def test_scaling_and_factors_equal_peft_layers(fixture_base, fixture_adapters, name):
    directory = next(path for path in fixture_adapters if path.name == name)
    adapter = load_adapter(str(directory))
    base = AutoModelForCausalLM.from_pretrained(fixture_base, local_files_only=True, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(directory))
    seen = 0
    for full_name, module in model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in getattr(module, "lora_A", {}):
            continue
        path = full_name.removeprefix("base_model.model.")
        factors = adapter.modules[path]
        assert factors.scaling == pytest.approx(module.scaling["default"], rel=1e-15), path
        torch.testing.assert_close(factors.a, module.lora_A["default"].weight.float())
        torch.testing.assert_close(factors.b, module.lora_B["default"].weight.float())
        seen += 1
    assert seen == len(adapter.modules) > 0


def test_pattern_key_is_peft_rule():
    keys = ["q_proj", "layers.1.self_attn.v_proj"]
    assert pattern_key(keys, "model.layers.0.self_attn.q_proj") == "q_proj"
    assert pattern_key(keys, "model.layers.1.self_attn.v_proj") == "layers.1.self_attn.v_proj"
    assert pattern_key(keys, "model.layers.0.self_attn.v_proj") is None
    assert pattern_key(keys, "model.layers.0.self_attn.xq_proj") is None  # whole-name suffix only
    config = {"r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 4}, "alpha_pattern": {"q_proj": 4}}
    assert module_scaling(config, "model.layers.0.self_attn.q_proj") == (4, 1.0)
    assert module_scaling(config, "model.layers.0.self_attn.v_proj") == (8, 2.0)
    assert module_scaling({"r": 16, "lora_alpha": 8, "use_rslora": True}, "x.q_proj") == (16, 2.0)


def test_content_hash_is_sha256_of_weights_then_config(tiny_adapters):
    import hashlib

    directory = tiny_adapters[0]
    expected = hashlib.sha256((directory / "adapter_model.safetensors").read_bytes()
                              + (directory / "adapter_config.json").read_bytes()).hexdigest()
    assert content_hash(directory) == expected


def test_cache_serves_by_hash_and_refuses_a_changed_file(tiny_adapters, tmp_path):
    directory = tmp_path / "copy"
    shutil.copytree(tiny_adapters[0], directory)
    cache = AdapterCache("cpu", torch.float32)
    digest = content_hash(directory)
    first = cache.get(str(directory), digest)
    assert cache.get(str(directory), digest) is first and cache.get(str(directory)) is first
    assert cache.loads == 1
    config = json.loads((directory / "adapter_config.json").read_text())
    config["lora_alpha"] = 1
    (directory / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(EvalError, match="content hash") as error:
        load_adapter(str(directory), digest)
    assert not error.value.retryable
    assert cache.get(str(directory)).content_hash != digest  # a changed directory is a new adapter


def test_module_missing_from_the_base_names_adapter_and_module(tiny_base, tiny_adapters, tmp_path):
    directory = tmp_path / "extra-layer"
    shutil.copytree(tiny_adapters[0], directory)
    tensors = load_file(directory / "adapter_model.safetensors")
    renamed = {key.replace("layers.1.", "layers.5."): value for key, value in tensors.items()}
    save_file(renamed, directory / "adapter_model.safetensors")
    host = ModelHost.load(str(tiny_base))
    with pytest.raises(EvalError) as error:
        Combiner(host.model).check_fits(load_adapter(str(directory)))
    assert str(directory) in str(error.value) and "model.layers.5." in str(error.value)
    assert "not in the base model" in str(error.value) and not error.value.retryable


def test_shape_mismatch_names_adapter_and_module(tiny_base, fixture_adapters):
    host = ModelHost.load(str(tiny_base))
    with pytest.raises(EvalError, match=r"a_r8: module model\.layers\.0\.\S+: LoRA shape .* differs from the base"):
        Combiner(host.model).check_fits(load_adapter(str(fixture_adapters[0])))


@pytest.mark.parametrize("field,value,message", [
    ("use_dora", True, "use_dora"),
    ("modules_to_save", ["lm_head"], "modules_to_save"),
    ("peft_type", "IA3", "peft_type IA3"),
])
def test_unsupported_adapters_are_refused(tiny_adapters, tmp_path, field, value, message):
    directory = tmp_path / "odd"
    shutil.copytree(tiny_adapters[0], directory)
    config = json.loads((directory / "adapter_config.json").read_text())
    config[field] = value
    (directory / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(EvalError, match=message):
        load_adapter(str(directory))


def test_missing_and_corrupt_files(tmp_path, tiny_adapters):
    with pytest.raises(EvalError, match="adapter_config.json not found"):
        load_adapter(str(tmp_path))
    directory = tmp_path / "corrupt"
    shutil.copytree(tiny_adapters[0], directory)
    (directory / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(EvalError, match="adapter_model.safetensors"):
        load_adapter(str(directory))


def test_missing_base_model_is_a_clear_error(tmp_path):
    with pytest.raises(EvalError, match="not a directory"):
        ModelHost.load(str(tmp_path / "nowhere"))
    with pytest.raises(EvalError, match="config.json not found"):
        ModelHost.load(str(tmp_path))
