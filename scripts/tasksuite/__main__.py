"""`python -m tasksuite build --out DIR [--ungated]`: builds the base and every LoRA of the suite under DIR (cached).
`python -m tasksuite eval --base DIR [--adapter DIR] [--tasks rev,inc] [--scale S]`: accuracy per task."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tasksuite")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build")
    build.add_argument("--out", required=True)
    build.add_argument("--base-steps", type=int, default=800)
    build.add_argument("--lora-steps", type=int, default=400)
    build.add_argument("--ungated", action="store_true", help="the first suite: LoRAs trained on their task only")
    build.add_argument("--shared-digits", action="store_true", help="gated, but every task on the digits 0-9")
    ev = sub.add_parser("eval")
    ev.add_argument("--base", required=True)
    ev.add_argument("--adapter")
    ev.add_argument("--tasks", default=None)
    ev.add_argument("--count", type=int, default=100)
    ev.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    from . import suite

    suite.setup_torch()
    if args.command == "build":
        paths = suite.build(args.out, log=lambda m: print(m, file=sys.stderr), base_steps=args.base_steps,
                            lora_steps=args.lora_steps, gated=not args.ungated,
                            disjoint=not args.shared_digits)
        print(json.dumps(paths, indent=1, sort_keys=True))
        return 0
    from . import evaluation, model

    base, tokenizer = model.load_base(args.base)
    net = base
    if args.adapter:
        from peft import PeftModel

        net = PeftModel.from_pretrained(base, args.adapter, adapter_name="default")
        evaluation.set_lora_scale(net, "default", args.scale)
    names = args.tasks.split(",") if args.tasks else suite.TASK_NAMES
    print(json.dumps(evaluation.task_accuracies(net, tokenizer, names, count=args.count,
                                                        disjoint=model.is_disjoint(args.base)), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
