"""A small task suite for judging merges by task accuracy (scripts/bench-quality, scripts/bench-adapt).

- `tasks`: synthetic digit-sequence tasks as (prompt, completion) text pairs (pure Python).
- `model`: WordLevel tokenizer + tiny LlamaForCausalLM pretrained on copying (`pretrain_base`; after every task
  word with `copy_every_task`).
- `lora`: one PEFT LoRA per task (`train_lora`), cached by settings; gated by replay (`replay`) + output penalty.
- `replay`: the base's own answers to every task's prompts (the replay targets), cached next to the base.
- `evaluation`: greedy-decoding exact-match accuracy (`task_accuracies`), `set_lora_scale`.
- `suite.build(root)`: the base and every LoRA the benchmarks use, built once and reused (gated by default).
- `bench_quality` + `quality_report`: scripts/bench-quality's driver and its markdown.

Run with ~/.cache/brickyard/venv/bin/python, one torch thread (`suite.setup_torch()`), from `scripts/` on the path:
    import sys; sys.path.insert(0, "scripts"); from tasksuite import suite
"""
from . import tasks  # noqa: F401  (torch-free)
# CLI: `python -m tasksuite build --out DIR` / `python -m tasksuite eval --base DIR --adapter DIR --tasks rev,inc`.
