"""Examples → token ids with a completion mask.

prompt/completion: ids = tok(prompt, add_special_tokens=True) ++ tok(completion, add_special_tokens=False) ++ [eos]
(eos appended iff the tokenizer has one). The loss counts the completion part, eos included.

messages (chat): the last message must be the assistant's. prompt text = chat template of messages[:-1] with the
generation prompt, full text = chat template of all messages, which must start with the prompt text; the
completion is the rest. Both are tokenized without special tokens (the template writes its own); no eos is added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import EvalError


@dataclass(frozen=True)
class TokenizedExample:
    """One example ready for the model: ids[:prompt_length] is the prompt, the rest the scored completion."""

    id: int
    ids: list[int]
    prompt_length: int
    reference: str  # the text greedy decoding must reproduce (stripped comparison)

    @property
    def completion_length(self) -> int:
        return len(self.ids) - self.prompt_length


def _encode(tokenizer, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def _chat_parts(tokenizer, example_id: int, messages_json: str) -> tuple[str, str, str]:
    try:
        messages = json.loads(messages_json)
    except json.JSONDecodeError as error:
        raise EvalError(f"example {example_id}: messages_json is not JSON: {error}") from None
    if (not isinstance(messages, list) or not messages
            or not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                       for m in messages)):
        raise EvalError(f"example {example_id}: messages_json must be a non-empty array of {{role, content}} strings")
    if messages[-1]["role"] != "assistant":
        raise EvalError(f"example {example_id}: the last message must be the assistant's (its tokens are scored)")
    if getattr(tokenizer, "chat_template", None) is None:
        raise EvalError(f"example {example_id}: chat messages need a tokenizer with a chat template")
    try:
        prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception as error:  # jinja errors and template-raised exceptions
        raise EvalError(f"example {example_id}: chat template failed: {error}") from None
    if not full.startswith(prompt):
        raise EvalError(f"example {example_id}: the chat template's rendering of the conversation does not start "
                        "with its rendering of the prompt; cannot locate the completion")
    return prompt, full[len(prompt):], messages[-1]["content"]


def tokenize_example(tokenizer, example, max_positions: int | None = None) -> TokenizedExample:
    """Tokenizes a protobuf Example (or anything with id/prompt/completion/messages_json attributes)."""
    if example.messages_json:
        if example.prompt or example.completion:
            raise EvalError(f"example {example.id}: set either prompt/completion or messages_json, not both")
        prompt_text, completion_text, reference = _chat_parts(tokenizer, example.id, example.messages_json)
        prompt_ids = _encode(tokenizer, prompt_text, special=False)
        completion_ids = _encode(tokenizer, completion_text, special=False)
    else:
        if not example.completion:
            raise EvalError(f"example {example.id}: empty completion (nothing to score)")
        prompt_ids = _encode(tokenizer, example.prompt, special=True)
        completion_ids = _encode(tokenizer, example.completion, special=False)
        eos = getattr(tokenizer, "eos_token_id", None)
        if eos is not None:
            completion_ids.append(int(eos))
        reference = example.completion
    if not prompt_ids:
        raise EvalError(f"example {example.id}: the prompt has no tokens (the first completion token needs a context)")
    if not completion_ids:
        raise EvalError(f"example {example.id}: the completion has no tokens")
    ids = prompt_ids + completion_ids
    if max_positions is not None and len(ids) > max_positions:
        raise EvalError(f"example {example.id}: {len(ids)} tokens exceed the model's {max_positions} positions")
    return TokenizedExample(id=int(example.id), ids=ids, prompt_length=len(prompt_ids), reference=reference)
