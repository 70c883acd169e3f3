"""Tasks and task families: the vocabulary every metagym environment shares.

A **task** is one member of a family of environments: a frozen dataclass, hashable,
picklable and JSON round-trippable, with a stable :attr:`Task.task_id` derived from its
canonical JSON. A **task family** declares the task's parameters, samples tasks from a
:class:`numpy.random.Generator` and assigns every task to exactly one split: ``"train"`` to
learn on, ``"validation"`` to choose hyperparameters on, ``"test"`` to score once, ``"ood"``
outside the training ranges. A family with no held-out tasks (GridNavi's 21 goals) has only
``"train"``: it is scored on its prior, with fresh seeds, as the paper that defined it was.

Example:
    >>> import numpy as np
    >>> from metagym.envs.metagrid import GridFamily
    >>> family = GridFamily(level="procedural")
    >>> task = family.sample(np.random.default_rng(0), 1, split="validation")[0]
    >>> family.split_of(task)
    'validation'
    >>> type(task).from_json(task.to_json()) == task
    True
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import numpy as np

from metagym.errors import ArgumentError, ArgumentTypeError

if TYPE_CHECKING:
    from metagym.policies import Policy
    from metagym.streams import Streams

SPLITS: tuple[str, ...] = ("train", "validation", "test", "ood")
#: Share of hash buckets (cells, seeds, goal cells) held out as ``test``, and as ``validation``.
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class Task:
    """Base class of every task: subclasses are frozen dataclasses of JSON-able fields.

    Fields may be ``int``, ``float``, ``str``, ``bool`` or tuples of those; tuples are written
    as JSON lists and read back as tuples. Every field is checked against its annotation when a
    task is made (a string in an ``int`` field, a bool for a number, NaN or infinity in a
    ``float`` field are refused there, naming the field), so a task that exists can be written
    as strict JSON and played; the family's ``validate`` checks ranges.
    """

    def __post_init__(self) -> None:
        for name, kind in _field_kinds(type(self)):
            _check_field(getattr(self, name), kind, f"task.{name}")

    def to_dict(self) -> dict[str, Any]:
        """The task's fields, with tuples as lists (JSON-ready)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, with the task type under ``"type"``."""
        payload = {"type": type(self).__name__, **self.to_dict()}
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        """Build a task of this class from :meth:`to_dict` output (``"type"`` may be present)."""
        if not isinstance(data, dict):
            raise ArgumentTypeError("task", f"expected a JSON object of fields, got {type(data).__name__}")
        data = dict(data)
        kind = data.pop("type", cls.__name__)
        if kind != cls.__name__:
            raise ArgumentTypeError("task", f"JSON holds a {kind!r}, expected a {cls.__name__!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ArgumentError("task", f"unknown fields {unknown} for {cls.__name__}; allowed: {sorted(names)}")
        missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in data and _required(f))
        if missing:
            raise ArgumentError("task", f"missing fields {missing} for {cls.__name__}")
        return cls(**{k: _from_jsonable(v) for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> Task:
        """Inverse of :meth:`to_json`; malformed JSON raises ValueError naming ``task``."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as error:
            raise ArgumentError("task", f"not valid JSON ({error})") from None
        return cls.from_dict(data)

    @property
    def task_id(self) -> str:
        """Stable 16-hex-digit id: a hash of the canonical JSON, equal across runs and machines."""
        return hashlib.blake2b(self.to_json().encode(), digest_size=8).hexdigest()


_FIELD_KINDS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _field_kinds(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, annotation) of a task class's fields (resolved once per class)."""
    if cls not in _FIELD_KINDS:
        import typing

        hints = typing.get_type_hints(cls)
        _FIELD_KINDS[cls] = tuple((f.name, hints.get(f.name, Any)) for f in dataclasses.fields(cls))
    return _FIELD_KINDS[cls]


def _check_field(value: Any, kind: Any, where: str) -> None:
    """Raise ValueError naming ``where`` unless ``value`` fits annotation ``kind``."""
    plain = type(value)
    if (plain is kind and plain is not float) or (plain is float is kind and value - value == 0.0):
        return  # the common case, fast (x - x is 0.0 for every finite float, nan otherwise)
    import math
    import typing

    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        if not isinstance(value, tuple):
            raise ArgumentError(where, f"expected a tuple, got {value!r}")
        ellipsis = len(args) == 2 and args[1] is Ellipsis
        if not ellipsis and args and len(args) != len(value):
            raise ArgumentError(where, f"expected {len(args)} values, got {value!r}")
        for i, item in enumerate(value):
            _check_field(item, args[0] if ellipsis else (args[i] if args else Any), f"{where}[{i}]")
        return
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)
    if kind is float:
        if not number or not math.isfinite(float(value)):
            raise ArgumentError(where, f"expected a finite number, got {value!r}")
    elif kind is int:
        if not number or not float(value).is_integer() or isinstance(value, float | np.floating):
            raise ArgumentError(where, f"expected an integer, got {value!r}")
    elif kind is bool:
        if not isinstance(value, bool | np.bool_):
            raise ArgumentError(where, f"expected true or false, got {value!r}")
    elif kind is str and not isinstance(value, str):
        raise ArgumentError(where, f"expected a string, got {value!r}")


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def check_int(value: Any, argument: str, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool or a float) in [low, high], else ValueError naming ``argument``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise ArgumentError(argument, f"expected an integer in [{low}, {high}], got {value!r}")
    return int(value)


def check_cell(value: Any, argument: str) -> tuple[int, int]:
    """``value`` if it is a (row, col) pair of ints, else ValueError naming ``argument``."""
    ints = isinstance(value, tuple) and len(value) == 2
    if not ints or any(isinstance(v, bool) or not isinstance(v, int | np.integer) for v in value):
        raise ArgumentError(argument, f"expected a (row, col) pair of integers, got {value!r}")
    return (int(value[0]), int(value[1]))


#: The most tasks one ``sample`` call draws (refused before anything is allocated).
MAX_SAMPLE = 10_000_000


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _python(value: Any) -> Any:
    """An array element as the plain Python value a task field holds (rows become tuples)."""
    if isinstance(value, np.ndarray):
        return tuple(_python(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_jsonable(v) for v in value)
    return value


def stable_unit_hash(text: str) -> float:
    """Map a string to [0, 1) by a hash that is the same on every run and machine."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


@functools.lru_cache(maxsize=1 << 18)
def hash_split(key: str) -> str:
    """The split of the hash bucket named ``key``: ``test``, ``validation`` or ``train``.

    Buckets whose :func:`stable_unit_hash` is below :data:`TEST_FRACTION` are ``test``, the next
    :data:`VALIDATION_FRACTION` are ``validation``, the rest ``train``: disjoint by construction,
    and the same on every machine. Every family with held-out tasks splits through this one rule.

    Examples:
        >>> [hash_split(f"doc:{i}") for i in range(6)]
        ['train', 'train', 'train', 'test', 'train', 'validation']
    """
    u = stable_unit_hash(key)
    if u < TEST_FRACTION:
        return "test"
    return "validation" if u < TEST_FRACTION + VALIDATION_FRACTION else "train"


#: The codes :func:`hash_splits` returns, in code order.
SPLIT_CODES: tuple[str, ...] = ("train", "validation", "test")


def hash_splits(namespace: str, buckets: np.ndarray) -> np.ndarray:
    """:func:`hash_split` for a whole batch of integer-named buckets, as codes into :data:`SPLIT_CODES`.

    Bucket ``j`` is the row ``buckets[j]`` (or the integer, for a 1-D array): a grid cell, a
    layout seed. Its entries are folded into a 64-bit word seeded by ``namespace`` and mixed
    (SplitMix64's mixer); the word's top 53 bits, as a fraction, fall below
    :data:`TEST_FRACTION` for ``test`` and below ``TEST_FRACTION + VALIDATION_FRACTION`` for
    ``validation``. The same on every machine, and one numpy pass for any number of buckets.

    Examples:
        >>> [SPLIT_CODES[c] for c in hash_splits("doc", np.arange(12))]
        ['train', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'test', 'train']
    """
    from metagym.streams import fold_rows

    u = (fold_rows(_namespace_word(namespace), np.asarray(buckets)) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.where(u < TEST_FRACTION, 2, np.where(u < TEST_FRACTION + VALIDATION_FRACTION, 1, 0)).astype(np.int8)


@functools.lru_cache(maxsize=256)
def _namespace_word(namespace: str) -> int:
    return int.from_bytes(hashlib.blake2b(namespace.encode(), digest_size=8).digest(), "little")


def split_code(split: str) -> int:
    """The code of ``split`` in :data:`SPLIT_CODES`."""
    return SPLIT_CODES.index(split)


def first_accepted(
    draw: Callable[[np.ndarray, int], np.ndarray],
    accept: Callable[[np.ndarray], np.ndarray],
    n: int,
    tries: int = 4,
    looked: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Rejection sampling for a split, vectorised: one accepted candidate for each of ``n`` draws.

    ``draw(rows, tries)`` returns ``tries`` (or more) candidates for each pending draw in
    ``rows``, as an array of shape ``(len(rows), k, ...)``; ``accept(candidates)`` says which of
    a flat array of candidates to keep. Each row keeps its first accepted candidate; rows with
    none draw again. ``looked(rows, last)``, if given, hears after each pass how far each row
    looked: the index of its accepted candidate, or ``k - 1``. When row ``j`` reads only its
    own random stream (a batched env's sub-env), its result does not depend on the other rows.
    """
    rows = np.arange(n)
    out: np.ndarray | None = None
    while out is None or len(rows):  # one pass even for n = 0: the result has its shape
        candidates = draw(rows, tries)
        k = candidates.shape[1]
        keep = accept(candidates.reshape(len(rows) * k, *candidates.shape[2:])).reshape(len(rows), k)
        found = keep.any(axis=1)
        first = keep.argmax(axis=1)
        if looked is not None:
            looked(rows, np.where(found, first, k - 1))
        if out is None:
            out = np.empty((n, *candidates.shape[2:]), dtype=candidates.dtype)
        hits = np.flatnonzero(found)
        out[rows[hits]] = candidates[hits, first[hits]]
        rows = rows[~found]
    return out


#: ``uniforms(rows, k)``: ``k`` uniforms in [0, 1) for each pending draw in ``rows``, shape (len(rows), k).
Uniforms = Callable[[np.ndarray, int], np.ndarray]


def generator_uniforms(rng: np.random.Generator) -> Uniforms:
    """:data:`Uniforms` from one numpy generator (``TaskFamily.sample``'s draws)."""
    return lambda rows, k: rng.random((len(rows), k))


class stream_uniforms:
    """:data:`Uniforms` where draw ``j`` reads env ``idx[j]``'s own stream (``draw_arrays``'s draws).

    The envs' streams are independent and counter-based, so a rejection loop can look ahead
    (:meth:`peek`) and then consume only what each env used (:meth:`advance`):
    :func:`draw_in_split` does, for the same tasks in fewer numpy passes.
    """

    def __init__(self, streams: Streams, idx: np.ndarray) -> None:
        self.streams, self.idx = streams, idx

    def __call__(self, rows: np.ndarray, k: int) -> np.ndarray:
        return self.streams.random(self.idx[rows], k)

    def peek(self, rows: np.ndarray, k: int) -> np.ndarray:
        """The next ``k`` uniforms of each of ``rows``, left unconsumed."""
        return self.streams.peek(self.idx[rows], k)

    def advance(self, rows: np.ndarray, counts: np.ndarray) -> None:
        """Consume ``counts[j]`` uniforms of row ``rows[j]``."""
        self.streams.advance(self.idx[rows], counts)


def draw_in_split(
    uniforms: Uniforms,
    width: int,
    make: Callable[[np.ndarray], np.ndarray],
    codes: Callable[[np.ndarray], np.ndarray],
    code: int,
    n: int,
) -> np.ndarray:
    """``n`` candidates whose split code is ``code``, by :func:`first_accepted`.

    A candidate is ``make(u)`` of ``width`` uniforms (``make`` maps an (m, width) array to m
    candidates); ``codes`` gives candidates' split codes. ``uniforms`` is either a numpy
    generator's (:func:`generator_uniforms`) or a batched env's streams' (:func:`stream_uniforms`).
    """
    tries = _TRIES.get(code, 2)

    def accept(candidates: np.ndarray) -> np.ndarray:
        return codes(candidates) == code

    if isinstance(uniforms, stream_uniforms):
        return _draw_ahead(uniforms, width, make, accept, n, tries)

    def draw(rows: np.ndarray, tries: int) -> np.ndarray:
        candidates = make(uniforms(rows, tries * width).reshape(len(rows) * tries, width))
        return candidates.reshape(len(rows), tries, *candidates.shape[1:])

    return first_accepted(draw, accept, n, tries)


#: Above this many pending rows, :func:`_draw_ahead` peeks one round at a time.
ROWS_PER_PASS = 256


def _draw_ahead(
    uniforms: stream_uniforms,
    width: int,
    make: Callable[[np.ndarray], np.ndarray],
    accept: Callable[[np.ndarray], np.ndarray],
    n: int,
    tries: int,
) -> np.ndarray:
    """:func:`first_accepted` on per-env streams, its rounds drawn together.

    Round r of a row reads uniforms ``(r - 1) * tries * width`` onwards of the row's stream, so
    several rounds (one numpy pass each; a batch needs two or three before every row has a
    task) can be peeked at in one pass. Each row keeps its first accepted candidate and
    consumes the rounds up to it: the same task and the same stream position as drawing the
    rounds one by one. Rows with no accepted candidate look further.
    """
    per_round = tries * width

    def peek(rows: np.ndarray, tries: int) -> np.ndarray:
        # Only the speed depends on how far rows look, not the tasks: a large batch pays per
        # element, a small one per numpy call.
        rounds = 1 if len(rows) > ROWS_PER_PASS else 4
        candidates = make(uniforms.peek(rows, rounds * per_round).reshape(len(rows) * rounds * tries, width))
        return candidates.reshape(len(rows), rounds * tries, *candidates.shape[1:])

    def consume(rows: np.ndarray, last: np.ndarray) -> None:
        uniforms.advance(rows, (last // tries + 1) * per_round)

    return first_accepted(peek, accept, n, tries, consume)


#: Candidates drawn per round for each split code: about 90% of draws then end in one round
#: (a split's share of hash buckets is 70% train, 10% validation, 20% test).
_TRIES = {0: 2, 1: 22, 2: 11}


def ranked_split(keys: Sequence[str]) -> list[str]:
    """Splits for a small finite set of buckets: the first 20% (at least one) in a stable hash
    order are ``test``, the next 10% (at least one) ``validation``, the rest ``train``.

    A plain :func:`hash_split` could leave a small set's ``test`` or ``validation`` empty.
    """
    order = sorted(range(len(keys)), key=lambda i: stable_unit_hash(keys[i]))
    n_test = max(1, round(TEST_FRACTION * len(keys)))
    n_valid = max(1, round(VALIDATION_FRACTION * len(keys)))
    out = ["train"] * len(keys)
    for rank, i in enumerate(order):
        out[i] = "test" if rank < n_test else "validation" if rank < n_test + n_valid else "train"
    return out


@dataclasses.dataclass(frozen=True)
class Param:
    """One declared parameter of a task family.

    Attributes:
        name: Field name on the task dataclass.
        kind: ``"int"``, ``"float"``, ``"str"``, ``"cell"`` (a (row, col) pair) or ``"vector"``.
        doc: What the parameter means, with its unit if it has one.
        low: Smallest allowed value (numbers only), or None.
        high: Largest allowed value (numbers only), or None.
        default: The default task's value.
        choices: The allowed values, for parameters drawn from a finite set.
    """

    name: str
    kind: str
    doc: str
    low: float | None = None
    high: float | None = None
    default: Any = None
    choices: tuple[Any, ...] | None = None

    def describe(self) -> str:
        """One line for listings: name, kind, allowed values and meaning."""
        if self.choices is not None:
            shown = ", ".join(map(str, self.choices[:8])) + (", ..." if len(self.choices) > 8 else "")
            allowed = f"one of {{{shown}}}"
        elif self.low is not None or self.high is not None:
            allowed = f"in [{self.low}, {self.high}]"
        else:
            allowed = "any"
        return f"{self.name} ({self.kind}, {allowed}, default {self.default}): {self.doc}"


T = TypeVar("T", bound=Task)


class TaskFamily(ABC, Generic[T]):
    """A parameterised family of tasks with seeded sampling and disjoint splits.

    Subclasses set :attr:`task_type`, :attr:`params` and :attr:`splits`, and implement
    :meth:`_sample`, :meth:`split_of` and :meth:`_check`. Sampling draws every random number
    from the generator it is given, so the same generator state gives the same tasks.
    """

    #: Display name, used in listings and error messages.
    name: str = "family"
    #: The task dataclass this family's tasks are instances of.
    task_type: type[Task] = Task
    #: Splits this family has, a subset of :data:`SPLITS`.
    splits: tuple[str, ...] = SPLITS

    @property
    @abstractmethod
    def params(self) -> tuple[Param, ...]:
        """The declared parameters of a task."""

    @property
    @abstractmethod
    def default_task(self) -> T:
        """The family's canonical task."""

    @property
    @abstractmethod
    def horizon(self) -> int:
        """Longest episode, in steps, over the family's tasks."""

    @property
    def episodes_per_trial(self) -> int:
        """Default number of episodes in one trial (the RL² setting)."""
        return 2

    @property
    def reward_bounds(self) -> tuple[float, float]:
        """Smallest and largest reward of one step (infinite where rewards are unbounded)."""
        return (-np.inf, np.inf)

    def sample(self, rng: np.random.Generator, n: int, split: str = "train") -> list[T]:
        """Draw ``n`` tasks of ``split`` using only ``rng``.

        Args:
            rng: Source of every random draw.
            n: Number of tasks, at least 0.
            split: One of :attr:`splits`.

        Returns:
            A list of ``n`` tasks, each with ``split_of(task) == split``.
        """
        if not isinstance(rng, np.random.Generator):
            raise ArgumentTypeError("rng", f"expected a numpy.random.Generator, got {type(rng).__name__}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 <= n <= MAX_SAMPLE:
            raise ArgumentError("n", f"expected an integer from 0 to {MAX_SAMPLE:,}, got {n!r}")
        self.check_split(split)
        return self._sample(rng, int(n), split)

    # -- the batched envs' hot path: tasks as arrays ----------------------------------------
    def to_arrays(self, tasks: Sequence[T]) -> dict[str, np.ndarray]:
        """``tasks`` as one array per field, with the task index first (struct of arrays).

        Batched envs keep their sub-envs' tasks this way, and dynamics read them this way
        (:meth:`metagym.batched.BatchedDynamics.set_task_arrays`). Tuple fields become extra
        axes. Families with fields of other shapes override this and :meth:`from_arrays`.
        """
        return {f.name: np.array([getattr(t, f.name) for t in tasks]) for f in dataclasses.fields(self.task_type)}

    def from_arrays(self, arrays: Mapping[str, np.ndarray], j: int) -> T:
        """Task ``j`` of ``arrays`` (:meth:`to_arrays`'s form) as the family's dataclass."""
        return cast(T, self.task_type(**{name: _python(column[j]) for name, column in arrays.items()}))

    def draw_arrays(self, streams: Streams, idx: np.ndarray, split: str = "train") -> dict[str, np.ndarray]:
        """One task of ``split`` for each env in ``idx``, drawn from that env's own stream.

        The task of env ``i`` depends only on ``streams``' key and counter for ``i``, never on
        which other envs drew beside it: that is what makes sub-env ``i`` of a batched env
        equal to a single env with the same seed. A family with :meth:`draw_from` draws the
        whole batch in one vectorised call; otherwise each env's generator ``streams[i]`` goes
        to :meth:`_sample` (a Python loop).
        """
        if type(self).draw_from is not TaskFamily.draw_from:
            return self.draw_from(stream_uniforms(streams, idx), len(idx), split)
        return self.to_arrays([self._sample(streams[int(i)], 1, split)[0] for i in idx])

    def draw_from(self, uniforms: Uniforms, n: int, split: str) -> dict[str, np.ndarray]:
        """``n`` tasks of a valid ``split`` as arrays (:meth:`to_arrays`'s form), every random
        number read through ``uniforms`` (:data:`Uniforms`).

        Optional. A family that implements it gets both of its draws from this one method:
        :meth:`sample` (a numpy generator's uniforms) and :meth:`draw_arrays` (each env's own
        stream), so the two cannot drift apart. A family without it implements :meth:`_sample`.
        """
        raise NotImplementedError(f"{type(self).__name__} implements _sample, not draw_from")

    def check_split(self, split: str) -> None:
        """Raise ValueError unless ``split`` is one of this family's splits."""
        if split in self.splits:
            return
        if self.splits == ("train",) and split in ("validation", "test"):
            raise ArgumentError(
                "split",
                f"{self.name} has no held-out tasks, so no {split!r} split; it is scored on its "
                f"prior with fresh seeds: use split 'train'",
            )
        raise ArgumentError("split", f"{split!r} is not a split of {self.name}; allowed: {list(self.splits)}")

    def validate(self, task: Any, argument: str = "task") -> T:
        """Return ``task`` if it belongs to this family, else raise an
        :class:`~metagym.errors.ArgumentError` (an ArgumentTypeError for a task of another type).

        Args:
            task: The candidate task.
            argument: Name of the argument being checked, used in the error message.
        """
        if isinstance(task, Mapping):  # a task's dict (to_dict / JSON), as learn2learn users pass them
            task = self.task_type.from_dict(dict(task))
        if not isinstance(task, self.task_type):
            raise ArgumentTypeError(
                argument, f"expected a {self.task_type.__name__} for {self.name}, got {type(task).__name__}"
            )
        checked = cast(T, task)
        try:
            self._check(checked, argument)
        except ArgumentError:
            raise
        except ValueError as error:  # a family whose _check raises plain ValueErrors ("task.field: why")
            name, colon, detail = str(error).partition(": ")
            if colon and name.startswith(argument):
                raise ArgumentError(name, detail) from None
            raise ArgumentError(argument, str(error)) from None
        return checked

    @abstractmethod
    def oracle_policy(self) -> Policy:
        """A policy that reads the task at trial start and acts (near-)optimally."""

    def bayes_optimal_policy(self, split: str = "train", episodes: int | None = None) -> Policy | None:
        """The Bayes-optimal policy for trials of ``episodes`` episodes on tasks drawn from
        ``split``, where it can be computed exactly; None elsewhere (the default)."""
        return None

    def goal_posterior(self, split: str, n: int) -> Any | None:
        """The exact posterior over a hidden goal's cell for ``n`` trials on tasks drawn from
        ``split``, where the family can track it (hidden-goal grids:
        :class:`metagym.envs.grid_bayes.GoalPosterior`); None elsewhere (the default)."""
        return None

    @property
    def held_out(self) -> bool:
        """Whether the family holds tasks out of training (a ``test`` split)."""
        return "test" in self.splits

    def task_set(self, split: str) -> tuple[T, ...] | None:
        """Every task of ``split`` when it is a small finite set (evaluation then enumerates it
        in equal strata instead of sampling with replacement); None for continuous or vast
        splits (the default)."""
        self.check_split(split)
        return None

    def describe(self) -> str:
        """A multi-line description: parameters, splits and horizon."""
        lines = [f"{self.name}: horizon {self.horizon}, splits {', '.join(self.splits)}"]
        lines += [f"  {p.describe()}" for p in self.params]
        return "\n".join(lines)

    def _sample(self, rng: np.random.Generator, n: int, split: str) -> list[T]:
        """Draw ``n`` tasks of a valid ``split``. The default reads ``rng`` through
        :meth:`draw_from`; a family without :meth:`draw_from` overrides this."""
        if n == 0:
            return []
        arrays = self.draw_from(generator_uniforms(rng), n, split)
        return [self.from_arrays(arrays, j) for j in range(n)]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ABCMeta has not counted the abstract methods yet here: look for one left unimplemented.
        abstract = any(getattr(getattr(cls, name, None), "__isabstractmethod__", False) for name in dir(cls))
        if not abstract and cls._sample is TaskFamily._sample and cls.draw_from is TaskFamily.draw_from:
            raise ArgumentTypeError(cls.__name__, "a task family implements _sample or draw_from")

    @abstractmethod
    def split_of(self, task: T) -> str:
        """The one split ``task`` belongs to."""

    @abstractmethod
    def _check(self, task: T, argument: str) -> None:
        """Raise :class:`~metagym.errors.ArgumentError` naming ``argument`` (or a part of it,
        ``f"{argument}.goal"``) if a parameter of ``task`` is out of bounds; a plain ValueError
        ``"task.goal: why"`` is turned into one."""
