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


def test_disjoint_tasks_draw_the_same_digits_and_share_no_digit_token():
    seen = {}
    for name in tasks.TASKS:
        shared = tasks.examples(name, 30, seed=4, split="test")
        own = tasks.examples(name, 30, seed=4, split="test", disjoint=True)
        for (p, c), (dp, dc) in zip(shared, own):
            # the same draw, written with the task's own tokens: rev3 for 3
            assert dp.split()[0] == name and dp.split()[-1] == "="
            assert [w.removeprefix(name) for w in dp.split()[1:-1]] == p.split()[1:-1]
            assert [w.removeprefix(name) for w in dc.split()] == c.split()
            assert all(w.startswith(name) and w != name for w in dp.split()[1:-1] + dc.split())
        seen[name] = {w for p, c in own for w in p.split()[1:-1] + c.split()}
        copies = tasks.copy_examples(name, 10, seed=4, disjoint=True)
        assert all(c == " ".join(p.split()[1:-1]) and c.split()[0].startswith(name) for p, c in copies)
    names = list(seen)
    assert all(not (seen[a] & seen[b]) for i, a in enumerate(names) for b in names[i + 1:])
    vocabulary = set(tasks.vocabulary(disjoint=True))
    assert set().union(*seen.values()) <= vocabulary
    assert not set().union(*seen.values()) & set(tasks.vocabulary())  # the shared vocabulary has none of them
    assert tasks.symbols(tasks.PRETRAIN_TASK, True) == tasks.DIGITS  # cpy stays on the digits
