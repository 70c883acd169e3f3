"""Evaluation protocol v2: which tasks are scored, splits, Bayes-optimal references, results.

Each test here failed on the first release's protocol (issue 8) and guards one of its fixes.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

import metagym
from metagym.envs.bandit import BanditTask
from metagym.envs.bandit_bayes import BanditBayesOptimal, uniform_value
from metagym.envs.grid_bayes import SearchPlan
from metagym.envs.metagrid_levels import Layout, named_layout
from metagym.evaluation import _results, evaluation_tasks
from metagym.policies import run_trials
from metagym.registration import family_of
from metagym.tasks import SPLITS, hash_split, ranked_split

FAMILY_IDS = metagym.env_ids(trials=False)


def family(env_id: str):  # type: ignore[no-untyped-def]
    return family_of(gym.make(env_id, disable_env_checker=True))


# -- 1. GridNavi is VariBAD's task: trained and scored on the 21-goal prior ---------------------


def test_gridnavi_trains_on_every_goal_and_has_no_held_out_split() -> None:
    fam = family("MetaGrid-GridNavi-v0")
    assert fam.splits == ("train",) and not fam.held_out
    drawn = {t.goal for t in fam.sample(np.random.default_rng(0), 2000, "train")}
    assert drawn == set(named_layout("gridnavi").goal_cells) and len(drawn) == 21


def test_held_out_goal_variant_is_explicit() -> None:
    fam = family("MetaGrid-GridNavi-HeldOutGoals-v0")
    sizes = {split: len(fam.task_set(split)) for split in fam.splits}
    assert sizes == {"train": 15, "validation": 2, "test": 4}


@pytest.mark.parametrize("env_id", ["MetaGrid-GridNavi-v0", "MetaGrid-OpenRoom-v0", "MetaGrid-FourRooms-v0"])
def test_named_levels_are_scored_on_their_prior(env_id: str) -> None:
    fam = family(env_id)
    assert fam.splits == ("train",)
    with pytest.raises(ValueError, match=r"no held-out tasks, so no 'test' split.*use split 'train'"):
        fam.sample(np.random.default_rng(0), 1, "test")


def test_split_test_on_gridnavi_says_which_split_to_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    from metagym.agents.rl2 import RL2Config, Trainer

    run = tmp_path / "run"
    Trainer(RL2Config(num_envs=8, rollout_steps=15, hidden_size=8, num_minibatches=2, total_steps=240), run).run(
        progress=False
    )
    (run / "agent.txt").write_text("rl2\n")
    cmd = [sys.executable, "-m", "metagym.cli", "evaluate", "--run-dir", str(run), "--out", str(tmp_path / "r.json")]
    bad = subprocess.run([*cmd, "--split", "test"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "use split 'train'" in bad.stderr
    good = subprocess.run([*cmd, "--split", "train", "--tasks", "42"], capture_output=True, text=True, check=True)
    assert "bayes_optimal" in good.stdout


# -- 2. Finite task sets are enumerated in equal strata ----------------------------------------


def test_finite_split_is_enumerated_in_equal_strata() -> None:
    tasks, split, how = evaluation_tasks("MetaGrid-GridNavi-v0", None, 42, seed=0)
    assert split == "train" and how == {"kind": "strata", "distinct_tasks": 21, "repeats": 2, "remainder": 0}
    assert set(Counter(t.goal for t in tasks).values()) == {2} and len(tasks) == 42
    pairs, _, _ = evaluation_tasks("MetaBandit-DependentEasy-v0", None, 10, seed=3)
    assert Counter(t.probs for t in pairs) == {(0.1, 0.9): 5, (0.9, 0.1): 5}
    some, _, how = evaluation_tasks("MetaGrid-GridNavi-v0", None, 25, seed=1)
    counts = Counter(t.goal for t in some)
    assert how["remainder"] == 4 and sorted(counts.values()) == [1] * 17 + [2] * 4  # no task three times


def test_continuous_split_is_sampled_from_the_split() -> None:
    tasks, split, how = evaluation_tasks("MetaBandit-v0", None, 50, seed=0)
    assert split == "test" and how == {"kind": "sampled"}
    assert all(family("MetaBandit-v0").split_of(t) == "test" for t in tasks)


# -- 3. A validation split wherever there is a test split --------------------------------------


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_every_family_with_test_tasks_has_validation(env_id: str) -> None:
    fam = family(env_id)
    assert set(fam.splits) <= set(SPLITS)
    if "test" in fam.splits:
        assert "validation" in fam.splits
        tasks = fam.sample(np.random.default_rng(0), 300, "validation")
        assert all(fam.split_of(t) == "validation" for t in tasks)


def test_split_rules_are_disjoint_and_keep_test_where_it_was() -> None:
    keys = [f"k:{i}" for i in range(20_000)]
    shares = Counter(hash_split(k) for k in keys)
    assert abs(shares["test"] / 20_000 - 0.2) < 0.01 and abs(shares["validation"] / 20_000 - 0.1) < 0.01
    ranked = ranked_split([f"g:{i}" for i in range(21)])
    assert Counter(ranked) == {"train": 15, "test": 4, "validation": 2}


# -- 6. The dependent bandit's split does not favour an arm ------------------------------------


@pytest.mark.parametrize("env_id", ["MetaBandit-Dependent-v0", "MetaBandit-Independent-v0", "MetaBandit-v0"])
def test_bandit_splits_are_symmetric_under_swapping_arms(env_id: str) -> None:
    fam = family(env_id)
    for split in fam.splits:
        tasks = fam.sample(np.random.default_rng(1), 2000, split)
        for task in tasks[:200]:
            swapped = BanditTask(tuple(reversed(task.probs)))
            assert fam.split_of(swapped) == split
        best = Counter(int(np.argmax(t.probs)) for t in tasks)
        share = best[len(tasks[0].probs) - 1] / len(tasks)
        assert abs(share - 1 / len(tasks[0].probs)) < 0.06, f"{split}: last arm best in {share:.0%}"


# -- Bayes-optimal references --------------------------------------------------------------------


def test_grid_search_plan_matches_hand_solved_corridor() -> None:
    # Start (0,0); the goal is (0,1) or (0,2). Going right twice: goal (0,1) pays +1 +1 (staying),
    # goal (0,2) pays -0.1 +1; the mean is 1.45. A second episode walks straight to the known goal:
    # +1 +1 or -0.1 +1 again, 2.9 in all.
    corridor = Layout(np.zeros((1, 3), dtype=bool), (0, 0), ((0, 1), (0, 2)))
    assert SearchPlan(corridor, corridor.goal_cells, 2, 1, False).value == pytest.approx(1.45)
    assert SearchPlan(corridor, corridor.goal_cells, 2, 2, False).value == pytest.approx(2.9)
    one = SearchPlan(corridor, corridor.goal_cells, 2, 1, True)  # terminating: +1 or -0.1 +1
    assert one.value == pytest.approx((1.0 + 0.9) / 2) and one.actions == [[2, 2]]


def test_gridnavi_bayes_optimal_plays_its_exact_value() -> None:
    env = gym.make("MetaGrid-GridNavi-v0")
    fam = family_of(env)
    tasks = list(fam.task_set("train"))
    for episodes in (1, 4):
        policy = fam.bayes_optimal_policy("train", episodes)
        assert policy is not None
        returns = run_trials(env, policy, tasks, episodes, seed=0).sum(axis=1)
        assert returns.mean() == pytest.approx(policy.value)  # one trial per goal: the exact mean
    oracle = run_trials(env, fam.oracle_policy(), tasks, 4, seed=0).sum(axis=1).mean()
    assert 30 < policy.value < oracle  # knowing the goal is worth something; searching costs


def test_bandit_bayes_optimal_matches_hand_values() -> None:
    assert uniform_value(2, 1) == pytest.approx(0.5)
    # Pull arm 1 (1/2); after a success pull it again (2/3), after a failure switch (1/2): 13/12.
    assert uniform_value(2, 2) == pytest.approx(13 / 12)
    easy = BanditBayesOptimal(2, 1, pair=(0.1, 0.9))
    assert easy.value == pytest.approx(0.5)  # one pull, either arm: 0.5 * 0.1 + 0.5 * 0.9
    # Bayes-optimal play is at least as good as the classic baselines on the prior (10 pulls, 5 arms).
    assert 6.6 < uniform_value(5, 10) < 6.7


def test_bayes_optimal_is_a_reference_where_computable() -> None:
    assert family("MetaGrid-GridNavi-v0").bayes_optimal_policy("train") is not None
    assert family("MetaBandit-v0").bayes_optimal_policy("test", 10) is not None
    assert family("MetaBandit-v0").bayes_optimal_policy("test", 100) is None  # too many posteriors
    assert family("MetaBandit-Dependent-v0").bayes_optimal_policy("test", 100) is not None
    assert family("MetaGrid-v0").bayes_optimal_policy("test") is None


# -- 8. episodes_to_80pct_oracle counts episodes of experience for both kinds of agent ---------


def test_episodes_to_80pct_oracle_counts_experience_for_both_kinds() -> None:
    agent = SimpleNamespace(config=SimpleNamespace(env_id="MetaBandit-v0", selected_on="validation"))
    tasks = family("MetaBandit-v0").sample(np.random.default_rng(0), 4, "test")
    refs = {"random": np.zeros((4, 3)), "oracle": np.ones((4, 3))}
    returns = np.tile([0.1, 0.9, 1.0], (4, 1))  # 80% of the oracle first in the second column
    fam = family("MetaBandit-v0")
    memory = _results("m", agent, fam, "test", tasks, {"kind": "sampled"}, 0, False, returns, refs, [0, 1, 2], 50)
    assert memory["episodes_to_80pct_oracle"] == 1  # one episode of experience before the scored one
    gradient = _results("g", agent, fam, "test", tasks, {"kind": "sampled"}, 0, False, returns, refs, [0, 40, 80], 50)
    assert gradient["episodes_to_80pct_oracle"] == 40  # one step of 40 episodes before
    assert memory["selection_split"] == "validation" and memory["actions"] == "sampled"
    assert memory["tasks"][0]["type"] == "BanditTask" and len(memory["tasks"]) == 4


# -- 7. No number from another simulator in a "paper" column -----------------------------------


def test_reference_table_puts_no_foreign_simulator_numbers_in_the_paper_column() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "scripts" / "reference_numbers.py"
    spec = importlib.util.spec_from_file_location("reference_numbers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.rows()
    for env_id, _, _, paper, _ in rows:
        if env_id in module.MUJOCO_IDS:  # Gymnasium v5 models: the MAML paper used rllab's
            assert paper is None, env_id
    still = [row for row in rows if row[0] == "PointNav2D-v0" and row[4] is not None]
    assert [(row[3], row[4]) for row in still] == [(None, -38.3)]  # analytic, not a paper number
    assert set(module.MUJOCO_IDS) <= set(metagym.env_ids(trials=False))
