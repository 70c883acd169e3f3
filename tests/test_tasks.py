"""Tasks and families: JSON round trip, stable ids, splits, bad input."""

from __future__ import annotations

import json
import pickle
import re
from typing import Any

import numpy as np
import pytest

from metagym.envs.bandit import BanditTask
from metagym.envs.metagrid import GridFamily, GridTask
from metagym.envs.metagrid_levels import LEVELS, PROCEDURAL_OOD_SIZES

LEVEL_NAMES = sorted(LEVELS)
#: Every family of the MetaGrid levels: each named level on its prior and with held-out goals.
VARIANTS = [(name, False) for name in LEVEL_NAMES] + [(name, True) for name in LEVEL_NAMES if name != "procedural"]


@pytest.mark.parametrize("level", LEVEL_NAMES)
def test_json_round_trip_and_stable_id(level: str) -> None:
    family = GridFamily(level)
    rng = np.random.default_rng(0)
    for split in family.splits:
        for task in family.sample(rng, 50, split):
            text = task.to_json()
            assert GridTask.from_json(text) == task
            assert pickle.loads(pickle.dumps(task)) == task
            assert hash(GridTask.from_json(text)) == hash(task)
            assert GridTask.from_json(text).task_id == task.task_id
    assert len(GridTask("gridnavi", (4, 4)).task_id) == 16
    assert GridTask("gridnavi", (4, 4)).task_id != GridTask("gridnavi", (4, 3)).task_id


def test_task_id_is_stable_across_processes() -> None:
    import subprocess
    import sys

    code = "from metagym.envs.metagrid import GridTask; print(GridTask('gridnavi', (4, 4)).task_id)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == GridTask("gridnavi", (4, 4)).task_id


@pytest.mark.parametrize(("level", "held_out"), VARIANTS)
def test_splits_disjoint_and_complete(level: str, held_out: bool) -> None:
    family = GridFamily(level, held_out_goals=held_out)
    rng = np.random.default_rng(1)
    seen: dict[str, set[str]] = {}
    for split in family.splits:
        tasks = family.sample(rng, 3000 if level != "procedural" else 1500, split)
        assert all(family.split_of(t) == split for t in tasks)
        seen[split] = {t.task_id for t in tasks}
        assert seen[split], f"split {split} of {level} is empty"
    splits = list(seen)
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            assert not seen[a] & seen[b], f"{a} and {b} share tasks"
    if level != "procedural":  # a finite family: its splits together cover every goal cell
        from metagym.envs.metagrid_levels import named_layout

        all_goals = set(named_layout(level).goal_cells)
        drawn = {t.goal for split in family.splits for t in family.sample(rng, 5000, split)}
        assert drawn == all_goals
        listed = [t.goal for split in family.splits for t in family.task_set(split)]
        assert sorted(listed) == sorted(all_goals)  # task_set enumerates each split exactly


def test_procedural_ood_is_larger_sizes() -> None:
    family = GridFamily("procedural")
    tasks = family.sample(np.random.default_rng(2), 200, "ood")
    assert {t.size for t in tasks} == set(PROCEDURAL_OOD_SIZES)
    assert all(t.size not in PROCEDURAL_OOD_SIZES for t in family.sample(np.random.default_rng(2), 200, "train"))


def test_sampling_is_seeded() -> None:
    family = GridFamily("procedural")
    a = family.sample(np.random.default_rng(5), 20, "test")
    b = family.sample(np.random.default_rng(5), 20, "test")
    assert a == b
    assert a != family.sample(np.random.default_rng(6), 20, "test")


def test_gridnavi_goal_cells_match_varibad() -> None:
    family = GridFamily("gridnavi")
    goals = set(family.params[0].choices)
    excluded = {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert goals == {(r, c) for r in range(5) for c in range(5)} - excluded
    assert len(goals) == 21


def test_describe_lists_params() -> None:
    text = GridFamily("procedural").describe()
    assert "seed" in text and "size" in text and "goal" in text and "ood" in text


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda f: f.sample(np.random.default_rng(0), 3, split="validation"), ValueError, ["split", "train"]),
        (lambda f: f.sample(np.random.default_rng(0), -1), ValueError, ["n:", "from 0 to"]),
        (lambda f: f.sample(np.random.default_rng(0), 10**12), ValueError, ["n:", "10,000,000"]),  # before allocating
        (lambda f: f.validate(GridTask("gridnavi", (3.0, 3.0))), ValueError, ["task.goal", "integer"]),
        (lambda f: f.validate(GridTask("gridnavi", (True, 3))), ValueError, ["task.goal", "integer"]),
        (lambda f: f.validate(GridTask("gridnavi", (3, 3), seed=0.0)), ValueError, ["task.seed", "integer"]),
        (lambda f: GridTask.from_json("[]"), TypeError, ["task:", "JSON object"]),
        (lambda f: GridTask.from_json("{"), ValueError, ["task:", "not valid JSON"]),
        (lambda f: GridTask.from_json('{"level":"gridnavi"}'), ValueError, ["task:", "missing fields ['goal']"]),
        (lambda f: f.sample(0, 3), TypeError, ["rng", "Generator"]),
        (lambda f: f.sample(np.random.default_rng(0), 3, split="ood"), ValueError, ["split", "'ood'"]),
        (lambda f: f.validate("gridnavi:(2,2)"), TypeError, ["task", "GridTask"]),
        (lambda f: f.validate(GridTask("gridnavi", (0, 1))), ValueError, ["task.goal", "(0, 1)"]),
        (lambda f: f.validate(GridTask("gridnavi", (9, 9))), ValueError, ["task.goal"]),
        (lambda f: f.validate(GridTask("four_rooms", (3, 3))), ValueError, ["task.level", "gridnavi"]),
        (lambda f: f.validate(GridTask("gridnavi", (3, 3), seed=4)), ValueError, ["seed and size"]),
        (lambda f: GridTask.from_json('{"type":"Other","level":"gridnavi"}'), TypeError, ["Other", "GridTask"]),
        (lambda f: GridTask.from_json('{"level":"gridnavi","goal":[2,2],"colour":1}'), ValueError, ["colour"]),
    ],
)
def test_bad_input_is_named(call, error, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as info:
        call(GridFamily("gridnavi"))
    for word in words:
        assert word in str(info.value)


def test_procedural_bad_params() -> None:
    family = GridFamily("procedural")
    with pytest.raises(ValueError, match=r"task.size: expected one of \(7, 9, 11, 13\)"):
        family.validate(GridTask("procedural", (3, 3), seed=1, size=8))
    with pytest.raises(ValueError, match=r"task\.seed"):
        family.validate(GridTask("procedural", (3, 3), seed=-1, size=7))


def test_unknown_level() -> None:
    with pytest.raises(ValueError, match=r"level: unknown level 'maze'; allowed: \['four_rooms', 'gridnavi'"):
        GridFamily("maze")


@pytest.mark.parametrize("split", ["train", "validation", "test"])
@pytest.mark.parametrize("n", [0, 1, 40, 300])
def test_stream_draws_look_ahead_exactly(split: str, n: int) -> None:
    """Batched envs draw their tasks with the rejection rounds peeked at together
    (``_draw_ahead``): the same candidates and the same stream positions as drawing the
    rounds one by one (``first_accepted``), for every batch size and split."""
    from metagym.streams import STREAM_TASK, Streams
    from metagym.tasks import draw_in_split, stream_uniforms

    width = 3

    def codes(c: np.ndarray) -> np.ndarray:  # a split code per candidate, from its first cell
        return np.minimum((c[:, 0] * 10).astype(np.int64), 9) % 3

    results = []
    for ahead in (True, False):
        streams = Streams(max(n, 1))
        streams.seed(np.arange(max(n, 1)), np.arange(max(n, 1)) + 100, STREAM_TASK)
        idx = np.arange(n)[::-1].copy()  # any order of sub-envs
        uniforms = stream_uniforms(streams, idx)
        plain = uniforms if ahead else (lambda rows, k, u=uniforms: u(rows, k))  # not a stream_uniforms
        code = ["train", "validation", "test"].index(split)
        drawn = draw_in_split(plain, width, lambda u: u, codes, code, n)
        assert drawn.shape == (n, width) and (codes(drawn) == code).all()
        results.append((drawn, streams.counters.copy()))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])


def test_random_mdps_do_not_depend_on_their_batch() -> None:
    """A batch of MDPs is built in cache-sized blocks: each MDP is the same alone or in any batch."""
    from metagym.envs.tabular_mdp import mdp_of, mdps_of

    seeds = np.arange(300) * 13 + 5
    means, transitions = mdps_of(seeds, 10, 5)
    for j in (0, 63, 64, 65, 299):  # inside and at the edges of blocks
        alone = mdp_of(int(seeds[j]), 10, 5)
        assert np.array_equal(means[j], alone[0]) and np.array_equal(transitions[j], alone[1])
    np.testing.assert_allclose(transitions.sum(axis=-1), 1.0)
    shuffled = np.random.default_rng(0).permutation(300)
    assert np.array_equal(mdps_of(seeds[shuffled], 10, 5)[1], transitions[shuffled])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda: BanditTask.from_json('{"type":"BanditTask","probs":[NaN,0.5]}'),
            "task.probs[0]: expected a finite",
        ),
        (lambda: BanditTask(probs=(float("inf"), 0.5)), "task.probs[0]: expected a finite number"),
        (lambda: BanditTask(probs=("0.5", 0.5)), "task.probs[0]: expected a finite number"),
        (
            lambda: GridTask.from_json('{"type":"GridTask","level":"gridnavi","goal":[1,2],"seed":"zero"}'),
            "task.seed: expected an integer, got 'zero'",
        ),
        (lambda: GridTask("gridnavi", (1, 2), seed=True), "task.seed: expected an integer, got True"),
        (lambda: GridTask("gridnavi", (1, 2), seed=1.5), "task.seed: expected an integer, got 1.5"),
        (lambda: GridTask("gridnavi", (1, 2, 3)), "task.goal: expected 2 values"),
        (lambda: GridTask(7, (1, 2)), "task.level: expected a string"),
    ],
)
def test_a_task_is_refused_at_construction_if_its_fields_do_not_fit(make: Any, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        make()


def test_task_json_is_strict_and_numpy_values_still_fit() -> None:
    task = BanditTask(probs=(np.float32(0.25), np.float64(0.5)))  # arrays' elements, as families make them
    assert json.loads(task.to_json())["probs"] == [0.25, 0.5]
    assert GridTask("procedural", (np.int64(1), 2), seed=np.int32(3), size=7).seed == 3
