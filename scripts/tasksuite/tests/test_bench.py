"""bench-quality's plan and cache (torch-free): the merges the issue asks for, the scale grid, atomic cache writes,
the summary's scale-1 / best-scale cells."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tasksuite import bench_quality, cache, quality_report, suite  # noqa: E402

#: lego's oversample gate (Sources/MergeEngine/MergeSpec.swift: LegoOptions.clusteringCount): a module oversamples
#: when units >= oversampleUnitsPerFineCluster · defaultOversample · k.
UNITS_PER_FINE_CLUSTER, DEFAULT_OVERSAMPLE = 4, 2


def plan():
    specs = suite.adapter_specs()
    return {label: (adapters, names, normalize, [specs[a] for a in adapters])
            for label, adapters, names, normalize in bench_quality.merges_by_name()}


def test_the_plan_has_every_merge_of_the_issue():
    merges = plan()
    for count in (2, 3, 6):
        for normalize, weights in ((True, "w=1/N"), (False, "w=1")):
            adapters, names, norm, specs = merges[f"{count} tasks, {weights}"]
            assert norm is normalize and len(adapters) == count and len(set(names)) == count
            assert [task for task, _, _ in specs] == names and {rank for _, _, rank in specs} == {bench_quality.RANK}
    soups = [m for label, m in merges.items() if "soup" in label]
    assert sorted(len(adapters) for adapters, *_ in soups) == [4, 4, 8, 8]
    for adapters, names, normalize, specs in soups:  # one task, distinct seeds, weights 1/N
        assert normalize and len(names) == 1 and {t for t, _, _ in specs} == set(names)
        assert len({seed for _, seed, _ in specs}) == len(adapters)
    assert {names[0] for _, names, _, _ in soups} == set(suite.SOUP_TASKS)
    mixed = next(m for label, m in merges.items() if label.startswith("mixed ranks"))
    assert len({rank for _, _, rank in mixed[3]}) == 3


def test_only_the_large_soup_passes_lego_oversample_gate():
    for label, (_, _, _, specs) in plan().items():
        units = sum(rank for _, _, rank in specs)  # units of every module: each LoRA targets the same modules
        passes = units >= UNITS_PER_FINE_CLUSTER * DEFAULT_OVERSAMPLE * bench_quality.RANK
        assert passes == label.startswith("large same-task soup"), (label, units)


def test_weights_one_over_n_sweep_scale_n_too():
    assert bench_quality.scales_for(6, normalize=True) == bench_quality.SCALES + [6.0]
    assert bench_quality.scales_for(3, normalize=True) == bench_quality.SCALES  # 3 is in the grid already
    assert bench_quality.scales_for(6, normalize=False) == bench_quality.SCALES
    assert 1.0 in bench_quality.SCALES


def test_summary_reports_scale_one_and_the_validation_best_including_n():
    def point(val, test=None):
        entry = {"val": {"rev": val, "inc": val}}
        if test is not None:
            entry["test"] = {"rev": test, "inc": test / 2}
        return entry

    # validation best at scale 6 (= N); a tie between 1.5 and 0.5 must not matter; test decoded at 1 and 6 only
    sweep = {str(s): point(v) for s, v in [(0.5, 0.1), (1.5, 0.1), (2.0, 0.2), (3.0, 0.3)]}
    sweep.update({"1.0": point(0.0, test=0.02), "6.0": point(0.6, test=0.8)})
    at_one, best, at_best, _ = quality_report.summarize(sweep, ["rev", "inc"])
    assert best == 6.0 and at_one == {"rev": 0.02, "inc": 0.01} and at_best == {"rev": 0.8, "inc": 0.4}
    record = {"merge": "6 tasks, w=1/N", "row": "svd", "tasks": ["rev", "inc"], "sweep": sweep}
    lines = quality_report.summary_lines([record, {"merge": "6 tasks, w=1/N", "row": "ties", "failed": "boom"}])
    assert lines[-2] == "| svd | 2 / **60** (6) |" and lines[-1] == "| ties | fails |"  # no count: no interval
    record["sizes"] = [100, 50]
    assert quality_report.summary_lines([record])[-1] == "| svd | 2 / **60** ±6 (6) |"  # 1.96·√((.16 + .24)/100)/2
    # ties of the validation mean go to the scale nearest 1
    assert quality_report.best_scale({0.5: {"a": 0.5}, 1.5: {"a": 0.5}, 3.0: {"a": 0.5}}, ["a"]) in (0.5, 1.5)
    assert quality_report.best_scale({1.0: {"a": 0.5}, 1.5: {"a": 0.5}}, ["a"]) == 1.0


def test_publish_directory_is_all_or_nothing_and_keeps_a_stale_copy(tmp_path):
    target = str(tmp_path / "lora")

    def writer(text):
        def write(directory):
            assert not os.path.exists(target) or open(os.path.join(target, "f")).read() != text  # not yet visible
            with open(os.path.join(directory, "f"), "w") as f:
                f.write(text)
        return write

    assert cache.publish_directory(target, writer("one")) == target
    assert open(os.path.join(target, "f")).read() == "one"
    cache.publish_directory(target, writer("two"))  # other settings: the old copy is moved aside, not deleted
    assert open(os.path.join(target, "f")).read() == "two"
    stale = [n for n in os.listdir(tmp_path) if n.startswith("lora.stale-")]
    assert len(stale) == 1 and open(tmp_path / stale[0] / "f").read() == "one"

    def failing(directory):
        open(os.path.join(directory, "f"), "w").write("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        cache.publish_directory(target, failing)
    assert open(os.path.join(target, "f")).read() == "two"  # untouched
    assert sorted(os.listdir(tmp_path)) == sorted(["lora"] + stale)  # no temporary left behind

    cache.write_json(str(tmp_path / "sweep.json"), {"a": 1})
    assert json.load(open(tmp_path / "sweep.json")) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == sorted(["lora", "sweep.json"] + stale)


def test_mean_interval_is_the_binomial_half_width_of_the_task_mean():
    assert quality_report.mean_interval({"a": 0.5}, 100) == pytest.approx(1.96 * 0.05)
    # two tasks: √(Σ p(1-p)/n)/T; a task at 0 or 1 adds no noise
    assert quality_report.mean_interval({"a": 0.5, "b": 1.0}, 400) == pytest.approx(1.96 * (0.25 / 400) ** 0.5 / 2)
    assert quality_report.mean_interval({"a": 0.5}, 500) < quality_report.mean_interval({"a": 0.5}, 100) / 2


def hits_record(row, tasks_hits, best_val=0.9):
    """A record whose best scale (by validation) is 3 and whose per-example test results there are `tasks_hits`."""
    names = list(tasks_hits)
    acc = {t: h.count("1") / len(h) for t, h in tasks_hits.items()}
    sweep = {"1.0": {"val": {t: 0.0 for t in names}, "test": {t: 0.0 for t in names}},
             "3.0": {"val": {t: best_val for t in names}, "test": acc, "test_hits": dict(tasks_hits)}}
    return {"merge": "3 tasks, w=1/N", "row": row, "tasks": names, "sweep": sweep, "sizes": [len(h) for h in tasks_hits.values()][:1] + [10]}


def test_paired_difference_cancels_shared_outcomes():
    a = hits_record("lego", {"rev": "1100", "inc": "1111"})
    same = hits_record("cat", {"rev": "1100", "inc": "1111"})
    assert quality_report.paired_difference(a, same) == (0.0, 0.0)
    b = hits_record("cat", {"rev": "1000", "inc": "1111"})  # one more right on rev: +1/4 on rev, +1/8 on the mean
    diff, half = quality_report.paired_difference(a, b)
    assert diff == pytest.approx(0.125)
    # rev's differences 0,1,0,0: sample variance 1/4, over 4 examples; inc's 0
    assert half == pytest.approx(1.96 * ((0.25 / 4) ** 0.5) / 2)
    old = hits_record("svd", {"rev": "1100", "inc": "1111"})
    del old["sweep"]["3.0"]["test_hits"]  # a cached sweep from before per-example results: no paired figure
    assert quality_report.paired_difference(a, old) is None
    lines = quality_report.paired_lines([a, b, old], ["3 tasks, w=1/N"], against=("cat", "svd"))
    assert "| lego | 75 | +12.5 ±" in "\n".join(lines) and lines[0].startswith("## Paired differences")


def test_lego_and_svd_also_run_at_cats_rank(tmp_path):
    at_sum = [r for r in bench_quality.BRICKYARD_ROWS if len(r) > 3 and r[3] == bench_quality.SUM_OF_RANKS]
    assert {r[1] for r in at_sum} == {"lego", "svd"}
    dirs = []
    for rank in (4, 8, 16):
        d = tmp_path / f"r{rank}"
        d.mkdir()
        (d / "adapter_config.json").write_text(json.dumps({"r": rank}))
        dirs.append(str(d))
    assert bench_quality.row_rank(at_sum[0], dirs) == 28
    assert bench_quality.row_rank(bench_quality.BRICKYARD_ROWS[0], dirs) == bench_quality.RANK


def test_judged_merges_get_more_examples_and_other_merges_keep_their_cache_keys():
    labels = [label for label, *_ in bench_quality.merges_by_name()]
    assert set(bench_quality.PRECISE_MERGES) <= set(labels)
    assert bench_quality.evaluation_sizes("3 tasks, w=1/N", 100, 50, (500, 200)) == (500, 200)
    assert bench_quality.evaluation_sizes("6 tasks, w=1/N", 100, 50, (500, 200)) == (100, 50)
    evaluator = object.__new__(bench_quality.Evaluator)  # no model: only the cache key
    evaluator.count, evaluator.validation, evaluator.base_settings = 100, 50, {"seed": 0}
    earlier = bench_quality.digest({"seed": 0}, 100, 50, bench_quality.SCALES, "adapter", "x")  # the key before sizes
    assert evaluator.cache_key(["adapter", "x"], bench_quality.SCALES) == earlier
    assert evaluator.cache_key(["adapter", "x"], bench_quality.SCALES, (100, 50)) == earlier
    assert evaluator.cache_key(["adapter", "x"], bench_quality.SCALES, (500, 200)) != earlier
