"""Tokenization rules: prompt/completion and chat; which tokens are scored; clear errors for bad examples."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from brickyard_evaluator.codec import PROTOCOL_VERSION, MalformedMessage, decode, encode
from brickyard_evaluator.data import tokenize_example
from brickyard_evaluator.errors import EvalError
from brickyard_evaluator.proto import pb
from tiny import Example


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    return AutoTokenizer.from_pretrained(tiny_base, local_files_only=True)


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_prompt_completion_scores_completion_and_eos(tokenizer):
    example = tokenize_example(tokenizer, Example(4, prompt="w1 w2", completion=" w3 w4"))
    assert example.ids == [tokenizer.bos_token_id] + ids(tokenizer, "w1 w2") + ids(tokenizer, "w3 w4") + [
        tokenizer.eos_token_id]
    assert example.prompt_length == 3 and example.completion_length == 3
    assert example.reference == " w3 w4" and example.id == 4


def test_chat_scores_the_last_assistant_turn(tokenizer):
    messages = [{"role": "system", "content": "w9"}, {"role": "user", "content": "w1 w2"},
                {"role": "assistant", "content": "w5"}, {"role": "user", "content": "w3"},
                {"role": "assistant", "content": "w6 w7"}]
    example = tokenize_example(tokenizer, Example(0, messages_json=json.dumps(messages)))
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert example.ids == ids(tokenizer, full)
    completion = example.ids[example.prompt_length:]
    assert tokenizer.decode(completion) == "w6 w7 </s>"  # content + the template's end token
    assert example.reference == "w6 w7"


@pytest.mark.parametrize("example,message", [
    (Example(1, prompt="w1", completion=""), "empty completion"),
    (Example(2, messages_json="[not json"), "not JSON"),
    (Example(3, messages_json=json.dumps([{"role": "user", "content": "w1"}])), "assistant"),
    (Example(4, messages_json=json.dumps([{"role": "user"}])), "role, content"),
    (Example(5, prompt="w1", completion="w2", messages_json="[]"), "not both"),
    (Example(6, prompt="w1", completion=" ".join(["w2"] * 200)), "exceed the model's 128 positions"),
])
def test_bad_examples_name_the_example(tokenizer, example, message):
    with pytest.raises(EvalError, match=message) as error:
        tokenize_example(tokenizer, example, max_positions=128)
    assert f"example {example.id}" in str(error.value) and not error.value.retryable


def test_codec_round_trip_and_malformed_frames():
    frame = encode(pb.EvalFailed(request_id=3, attempt=2, error="x", retryable=True))
    decoded = decode(frame)
    assert (decoded.version, decoded.kind, decoded.body.request_id) == (PROTOCOL_VERSION, "eval_failed", 3)
    assert decode(encode(pb.Hello(), version=7)).version == 7
    for bad in (b"\xff\xff\xff", pb.Envelope(protocol_version=1).SerializeToString()):
        with pytest.raises(MalformedMessage):
            decode(bad)
