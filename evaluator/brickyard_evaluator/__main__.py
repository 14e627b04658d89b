"""`python -m brickyard_evaluator` = the `brickyard-evaluator` command."""

from .cli import main

main()
