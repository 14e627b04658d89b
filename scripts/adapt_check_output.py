"""Checks a `brickyard adapt` output against the evaluator's on-the-fly combination (run with the evaluator venv).

  adapt_check_output.py BASE_DIR OUT_DIR DATA.jsonl
Loads OUT_DIR with PEFT (PeftModel.from_pretrained on the base) and, separately, the base with the evaluator's
Combiner installing ΔW_m = Σ_i λ[m, i] s_i B_i A_i from OUT_DIR/coefficients.json (the selected input adapters);
prints the largest absolute logit difference over the data's prompt + completion texts as JSON and exits 1 if it
exceeds 1e-4.
"""

import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "evaluator"))

import torch  # noqa: E402

torch.set_num_threads(1)

from brickyard_evaluator.adapters import load_adapter  # noqa: E402
from brickyard_evaluator.combination import Combiner  # noqa: E402
from brickyard_evaluator.evaluation import resolve_modules  # noqa: E402


def main() -> None:
    base_dir, out_dir, data = sys.argv[1], sys.argv[2], sys.argv[3]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    texts = []
    for line in Path(data).read_text().splitlines():
        if line.strip():
            example = json.loads(line)
            texts.append(example["prompt"] + " " + example["completion"])
    batches = [tokenizer(text, return_tensors="pt").input_ids for text in texts]

    peft_model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, dtype=torch.float32), out_dir)
    peft_model.eval()

    coefficients = json.loads((Path(out_dir) / "coefficients.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, dtype=torch.float32)
    model.eval()
    combiner = Combiner(model)
    adapters = [load_adapter(path) for path in coefficients["adapters"]]
    paths = resolve_modules(adapters, coefficients["modules"])
    terms = combiner.plan(adapters, paths)
    lam = torch.tensor(coefficients["lambda"], dtype=torch.float64)
    combiner.install(terms, {path: m for m, path in enumerate(paths)}, lam, torch.float32)

    worst = 0.0
    with torch.no_grad():
        for ids in batches:
            a = peft_model(ids).logits
            b = model(ids).logits
            worst = max(worst, float((a - b).abs().max()))
    print(json.dumps({"max_abs_logit_difference": worst, "texts": len(texts)}))
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
