"""Property-based fuzzing of every id: bad input gets a clear error naming it, or a valid result.

For each registered id, hypothesis draws make kwargs, tasks (fields and JSON), reset options,
seeds and actions, from values that users get wrong (bools for ints, floats for ints, NaN,
infinities, huge and negative numbers, strings, lists, complex and object arrays). Each call
must either raise ValueError/TypeError (or a Gymnasium error) whose message names the argument,
or return a valid result: observations inside the observation space, finite rewards, tasks that
round-trip through JSON and belong to exactly one split. Anything else fails the test.

With ``METAGYM_AUDIT=path`` the tally of outcomes (tried, clear error, valid) per category is
written to ``path`` as JSON: the audit table of the README and issue notes.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import metagym
from metagym.batched import MAX_ENVS
from metagym.registration import family_of

FAMILY_IDS = metagym.env_ids(trials=False)
ALL_IDS = metagym.env_ids()
TALLY: Counter[tuple[str, str]] = Counter()
FUZZ = settings(
    max_examples=int(os.environ.get("METAGYM_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,  # nothing written into the checkout (.hypothesis/)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: Values users get wrong, for any argument.
BAD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(-3, 30), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-3, 3), max_size=2),
    st.sampled_from([np.float32(1.5), np.int64(3), np.bool_(True), 2 + 1j, float("nan")]),
)
ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.int64, np.uint8, np.float32, np.float64, np.bool_, np.complex128]),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
)


@pytest.fixture(scope="module", autouse=True)
def audit() -> Iterator[None]:
    yield
    path = os.environ.get("METAGYM_AUDIT")
    if path:
        rows: dict[str, dict[str, int]] = {}
        for (category, outcome), count in sorted(TALLY.items()):
            rows.setdefault(category, {})[outcome] = count
        with open(path, "w") as handle:
            json.dump(rows, handle, indent=2)


def quiet() -> None:
    warnings.simplefilter("ignore")  # the checkers' and MuJoCo's warnings are not the subject here


def judged(category: str, names: tuple[str, ...], call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``call``: (False, None) after a clear error naming one of ``names``, or (True, result)."""
    TALLY[(category, "tried")] += 1
    try:
        result = call()
    except (ValueError, TypeError, gym.error.Error) as error:
        message = str(error)
        named = any(name.lower() in message.lower() for name in names)  # Gymnasium writes "Seed must be ..."
        assert named, f"{category}: the error does not name {names}: {message!r}"
        assert message.strip() and len(message) < 2000, f"{category}: not a one-line error: {message!r}"
        TALLY[(category, "clear error")] += 1
        return False, None
    TALLY[(category, "valid result")] += 1
    return True, result


def valid_obs(env: Any, obs: Any, where: str) -> None:
    assert env.observation_space.contains(obs), f"{where}: observation outside the observation space: {obs!r}"


def valid_step(env: Any, out: tuple[Any, ...], where: str) -> None:
    obs, reward, terminated, truncated, info = out
    valid_obs(env, obs, where)
    assert np.all(np.isfinite(reward)), f"{where}: reward {reward!r}"
    assert isinstance(terminated, bool | np.bool_) and isinstance(truncated, bool | np.bool_)
    assert isinstance(info, dict)


_ENVS: dict[str, Any] = {}


def env_for(env_id: str) -> Any:
    if env_id not in _ENVS:
        quiet()
        _ENVS[env_id] = gym.make(env_id, disable_env_checker=True)
    return _ENVS[env_id]


def constructor_names(env_id: str) -> list[str]:
    module, name = str(gym.spec(env_id).entry_point).split(":")
    params = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    names = [p for p in params if params[p].kind not in variadic]
    # render_mode is checked by gymnasium.make before our constructor sees it (a non-string
    # there fails inside Gymnasium, upstream), so it is not fuzzed here.
    return [p for p in names if p not in ("env_id", "render_mode")]


# -- make kwargs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ALL_IDS)
@FUZZ
@given(data=st.data())
def test_make_kwargs(env_id: str, data: st.DataObject) -> None:
    quiet()
    name = data.draw(st.sampled_from([*constructor_names(env_id), "bogus_option"]), label="kwarg")
    value = data.draw(BAD, label="value")
    ok, env = judged("make kwargs", (name,), lambda: gym.make(env_id, disable_env_checker=True, **{name: value}))
    if ok:
        obs, _ = env.reset(seed=0)
        valid_obs(env, obs, f"make({name}={value!r})")
        env.action_space.seed(0)
        valid_step(env, env.step(env.action_space.sample()), f"make({name}={value!r})")
        env.close()


@pytest.mark.parametrize("env_id", ["MetaGrid-GridNavi-v0", "MetaBandit-Trial-v0", "PointNav2D-v0"])
@FUZZ
@given(num_envs=BAD.filter(lambda v: not (isinstance(v, int) and 64 < v <= MAX_ENVS)))  # big but valid: slow
def test_make_vec_num_envs(env_id: str, num_envs: Any) -> None:
    quiet()
    ok, envs = judged("make_vec num_envs", ("num_envs",), lambda: gym.make_vec(env_id, num_envs=num_envs))
    if ok:
        assert envs.num_envs == num_envs >= 1 and isinstance(num_envs, int | np.integer)  # numpy ints are ints
        obs, _ = envs.reset(seed=0)
        valid_obs(envs, obs, f"num_envs={num_envs!r}")


# -- tasks -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", FAMILY_IDS)
@FUZZ
@given(data=st.data())
def test_task_fields(env_id: str, data: st.DataObject) -> None:
    family = family_of(env_for(env_id))
    task = family.default_task
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(task)]), label="field")
    value = data.draw(st.one_of(BAD, st.tuples(BAD, BAD)), label="value")

    def build() -> Any:
        return family.validate(dataclasses.replace(task, **{field: value}))

    ok, checked = judged("task fields", (field, "task"), build)
    if ok:
        assert type(checked).from_json(checked.to_json()) == checked  # what is accepted round-trips
        assert family.split_of(checked) in family.splits
        env = env_for(env_id)
        obs, _ = env.reset(seed=0, options={"task": checked})
        valid_obs(env, obs, f"task {checked}")
        assert env.unwrapped.task == checked


@pytest.mark.parametrize("env_id", FAMILY_IDS)
@FUZZ
@given(data=st.data())
def test_task_json(env_id: str, data: st.DataObject) -> None:
    family = family_of(env_for(env_id))
    kind = type(family.default_task)
    fields = {f.name: getattr(family.default_task, f.name) for f in dataclasses.fields(family.default_task)}
    field = data.draw(st.sampled_from(list(fields)), label="field")
    text = data.draw(
        st.one_of(
            st.text(max_size=12),
            st.sampled_from(["[]", "{}", "null", "1", '"x"', "{", json.dumps(fields, default=list)[:-1]]),
            BAD.map(lambda v: json.dumps({**fields, field: v}, default=str)),
        ),
        label="json",
    )
    ok, task = judged("task JSON", ("task", field), lambda: family.validate(kind.from_json(text)))
    if ok:
        assert family.split_of(task) in family.splits
        assert kind.from_json(task.to_json()) == task


# -- reset options and seeds ---------------------------------------------------------------------
OPTION_KEYS = st.sampled_from(["task", "keep_task", "reset_mask", "bogus"])


@pytest.mark.parametrize("env_id", ALL_IDS)
@FUZZ
@given(options=st.one_of(BAD, st.dictionaries(OPTION_KEYS, BAD, min_size=1, max_size=2)), seed=BAD)
def test_reset_options_and_seeds(env_id: str, options: Any, seed: Any) -> None:
    env = env_for(env_id)
    names = ("options", "seed", "task", "keep_task", "reset_mask", "bogus")
    ok, out = judged("reset options and seeds", names, lambda: env.reset(seed=seed, options=options))
    if ok:
        valid_obs(env, out[0], f"reset(seed={seed!r}, options={options!r})")


# -- actions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ALL_IDS)
@FUZZ
@given(action=st.one_of(BAD, ARRAYS, hnp.arrays(np.float64, st.just((1,)), elements=st.floats(-1e9, 1e9))))
def test_actions(env_id: str, action: Any) -> None:
    env = env_for(env_id)
    env.reset(seed=0)
    ok, out = judged("actions", ("action",), lambda: env.step(action))
    if ok:
        valid_step(env, out, f"step({action!r})")


@pytest.mark.parametrize("env_id", ["MetaGrid-GridNavi-v0", "MetaCartPole-Trial-v0", "PointNav2D-v0"])
@FUZZ
@given(action=st.one_of(BAD, ARRAYS))
def test_vector_actions(env_id: str, action: Any) -> None:
    quiet()
    envs = gym.make_vec(env_id, num_envs=2)
    envs.reset(seed=0)
    ok, out = judged("vector actions", ("action",), lambda: envs.step(action))
    if ok:
        obs, reward = out[0], out[1]
        valid_obs(envs, obs, f"step({action!r})")
        assert np.all(np.isfinite(reward)) and not math.isnan(float(np.sum(reward)))
