"""The suite's task definitions (torch-free): run with `python -m pytest scripts/tasksuite/tests`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tasksuite import tasks  # noqa: E402


def test_answers_by_hand():
    assert tasks.example("rev", [3, 1, 4]) == ("rev 3 1 4 =", "4 1 3")
    assert tasks.example("inc", [9, 0, 5]) == ("inc 9 0 5 =", "0 1 6")
    assert tasks.example("rot", [1, 2, 3, 4]) == ("rot 1 2 3 4 =", "2 3 4 1")
    assert tasks.example("neg", [0, 9, 4]) == ("neg 0 9 4 =", "9 0 5")
    assert tasks.example("swp", [1, 2, 3, 4, 5]) == ("swp 1 2 3 4 5 =", "2 1 4 3 5")
    assert tasks.example("dbl", [3, 7, 5]) == ("dbl 3 7 5 =", "6 4 0")
    assert tasks.example(tasks.PRETRAIN_TASK, [8, 8, 1]) == ("cpy 8 8 1 =", "8 8 1")


def test_examples_are_deterministic_and_splits_differ():
    for name in tasks.TASKS:
        first = tasks.examples(name, 20, seed=0)
        assert first == tasks.examples(name, 20, seed=0)
        assert first != tasks.examples(name, 20, seed=0, split="test")
        assert first != tasks.examples(name, 20, seed=1)
        for prompt, completion in first:
            words = prompt.split()
            assert words[0] == name and words[-1] == "="
            assert tasks.MIN_LENGTH <= len(words) - 2 <= tasks.MAX_LENGTH
            assert len(completion.split()) == len(words) - 2


def test_vocabulary_covers_every_word():
    vocabulary = set(tasks.vocabulary())
    for name in list(tasks.TASKS) + [tasks.PRETRAIN_TASK]:
        for prompt, completion in tasks.examples(name, 50, seed=3):
            assert set(prompt.split()) | set(completion.split()) <= vocabulary


def test_copy_examples_keep_the_task_word_and_copy_the_digits():
    for name in tasks.TASKS:
        pairs = tasks.copy_examples(name, 30, seed=2)
        assert pairs == tasks.copy_examples(name, 30, seed=2)
        for prompt, completion in pairs:
            words = prompt.split()
            assert words[0] == name and words[-1] == "="
            assert completion == " ".join(words[1:-1])
        # a stream of its own: not the training prompts of the task
        assert [p for p, _ in pairs] != [p for p, _ in tasks.examples(name, 30, seed=2)]
