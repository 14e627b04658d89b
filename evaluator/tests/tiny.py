"""Tiny models, tokenizers, adapters and examples built in code for the tests (no downloads)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<user>", "<assistant>", "<system>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<{{ message['role'] }}> {{ message['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)


def build_tokenizer(directory: Path, vocab_size: int):
    """A WordLevel tokenizer over words w0..w{n}, BOS added in front, with a chat template; saved to directory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = SPECIALS + [f"w{i}" for i in range(vocab_size - len(SPECIALS))]
    vocab = {word: index for index, word in enumerate(words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>", additional_special_tokens=["<user>", "<assistant>", "<system>"])
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    return tokenizer


def build_tiny_llama(directory: Path, seed: int = 0, config_json: Path | None = None, vocab_size: int = 128):
    """Saves a random tiny LlamaForCausalLM (float32) and its tokenizer into directory; returns the directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    if config_json is not None:
        fields = json.loads(config_json.read_text())
        fields.pop("transformers_version", None)
        config = LlamaConfig(**fields)
        vocab_size = config.vocab_size
    else:
        config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                             bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger weights than the default init: logits that depend visibly on the input
        for name, parameter in model.named_parameters():
            if parameter.dim() == 2:
                parameter.normal_(0.0, 0.15)
    model.save_pretrained(directory)
    build_tokenizer(directory, vocab_size)
    return directory


def random_lora(base_dir: Path, out_dir: Path, seed: int, rank: int = 4, alpha: float = 8.0,
                targets=("q_proj", "v_proj"), **config_fields) -> Path:
    """A random PEFT LoRA adapter for the base model at base_dir, saved by PEFT itself into out_dir."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0,
                        init_lora_weights=False, **config_fields)
    model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_A" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
            elif "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    model.save_pretrained(out_dir)
    return out_dir


class Example:
    """Stand-in for the protobuf Example (same attribute names)."""

    def __init__(self, id: int, prompt: str = "", completion: str = "", messages_json: str = "") -> None:
        self.id, self.prompt, self.completion, self.messages_json = id, prompt, completion, messages_json


def random_examples(count: int, vocab_words: int, seed: int = 0, chat_every: int = 0) -> list[Example]:
    """Prompt/completion examples of random words (every chat_every-th one a chat conversation)."""
    rng = random.Random(seed)
    examples = []
    for index in range(count):
        prompt = " ".join(f"w{rng.randrange(vocab_words)}" for _ in range(rng.randint(2, 6)))
        completion = " ".join(f"w{rng.randrange(vocab_words)}" for _ in range(rng.randint(1, 4)))
        if chat_every and index % chat_every == chat_every - 1:
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
            examples.append(Example(index, messages_json=json.dumps(messages)))
        else:
            examples.append(Example(index, prompt=prompt, completion=completion))
    return examples
