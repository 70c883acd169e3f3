"""Counter-based random streams, one per env, drawn for a whole batch in one numpy call.

A batched env needs every sub-env to draw from its own stream (so that sub-env ``i`` reset
with ``seed`` behaves exactly like a single env reset with ``seed + i``), yet a Python loop
over ``numpy.random.Generator`` objects costs a microsecond per sub-env per draw, which is
most of a batched step. :class:`Streams` keeps one 64-bit key and one counter per env
instead: draw ``c`` of env ``i`` is SplitMix64's output for state ``key_i + (c + 1) * gamma``, a
pure function of ``(key_i, c)``. Any set of envs draws at once with a few array operations,
and the result for env ``i`` does not depend on which other envs drew beside it.

SplitMix64 (Steele, Lea and Flood 2014; the seeder of Java's SplittableRandom and of
xoshiro) passes BigCrush; keys are themselves mixed from the seed, so streams of nearby seeds
(``seed``, ``seed + 1``, ...) are unrelated.

Example:
    >>> import numpy as np
    >>> batch, single = Streams(3), Streams(1)
    >>> batch.seed(np.arange(3), [10, 11, 12], salt=STREAM_EPISODE)
    >>> single.seed(np.arange(1), [11], salt=STREAM_EPISODE)
    >>> bool((batch.random(np.arange(3), 2)[1] == single.random(np.arange(1), 2)[0]).all())
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_MASK64 = (1 << 64) - 1
#: Which envs draw: an index array, or a slice (``slice(None)``: every env, without indexing).
Rows = np.ndarray | slice
#: Salts that make the streams of one seed independent: episodes (initial states, noise) and tasks.
STREAM_EPISODE = 1
STREAM_TASK = 2
#: Salt base for streams that build a task's content from its seed (tabular MDPs).
STREAM_CONTENT = 3


def mix64(z: np.ndarray, in_place: bool = False) -> np.ndarray:
    """SplitMix64's output function on a uint64 array (a bijection with full avalanche),
    overwriting ``z`` when ``in_place``."""
    z = z if in_place else z.copy()
    t = z >> _S30
    z ^= t
    z *= _M1
    np.right_shift(z, _S27, out=t)
    z ^= t
    z *= _M2
    np.right_shift(z, _S31, out=t)
    z ^= t
    return z


def fold_rows(seed: int, rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of an integer array (or of each entry of a 1-D one), from ``seed``."""
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[:, None] if rows.ndim == 1 else rows
    word = np.full(len(rows), seed, dtype=np.uint64)
    for column in rows.view(np.uint64).T:  # the same bits: int64 to uint64 is a view
        word ^= column
        word *= _M1
    return mix64(word, in_place=True)


def _fold(seed: int) -> int:
    """A non-negative int of any size folded to 64 bits (seeds from fresh entropy have 128)."""
    out = 0
    while True:
        out ^= seed & _MASK64
        seed >>= 64
        if not seed:
            return out


def seed_keys(seeds: Sequence[int] | np.ndarray, salt: int) -> np.ndarray:
    """The stream keys of non-negative integer ``seeds`` for stream kind ``salt``."""
    if isinstance(seeds, np.ndarray) and seeds.dtype.kind in "iu":
        folded = seeds.astype(np.uint64)  # below 2^64 already: no fold needed
    else:
        folded = np.array([_fold(int(s)) for s in seeds], dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix64(mix64(folded) + np.uint64(salt) * _GAMMA)


class Streams:
    """``num_envs`` counter-based random streams (one key and one counter per env).

    Every method takes ``idx``, the envs that draw (a 1-D integer array, in any order and
    without repeats; or a slice, cheaper when every env draws), and advances only their
    counters. Draws are float64 in [0, 1) with 53 random bits, as numpy's ``Generator.random``.

    ``streams[i]`` gives a :class:`numpy.random.Generator` seeded from env ``i``'s next draw,
    for code that wants numpy's full API for one env (it is slower: a generator per call).
    """

    def __init__(self, num_envs: int) -> None:
        self.keys = np.zeros(num_envs, dtype=np.uint64)
        self.counters = np.zeros(num_envs, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.keys)

    def seed(self, idx: np.ndarray, seeds: Sequence[int] | np.ndarray, salt: int) -> None:
        """Restart envs ``idx`` from non-negative integer ``seeds`` (one each), counters at 0."""
        self.keys[idx] = seed_keys(seeds, salt)
        self.counters[idx] = 0

    def seed_from_entropy(self, idx: np.ndarray) -> None:
        """Restart envs ``idx`` from fresh OS entropy (as an unseeded Gymnasium reset)."""
        self.keys[idx] = np.random.default_rng().integers(0, 2**64, len(idx), dtype=np.uint64, endpoint=False)
        self.counters[idx] = 0

    def bits(self, idx: Rows, size: int) -> np.ndarray:
        """(len(idx), size) uint64 random words: the next ``size`` draws of each env."""
        words = self.peek_bits(idx, size)
        self.counters[idx] += np.uint64(size)
        return words

    def peek_bits(self, idx: Rows, size: int) -> np.ndarray:
        """:meth:`bits` without advancing the counters: the words the next call would return.
        With :meth:`advance`, a caller can look ahead and then consume only what it used."""
        return self._draw(idx, size, None)

    def advance(self, idx: Rows, counts: np.ndarray | int) -> None:
        """Skip ``counts`` draws (one count per env in ``idx``, or one for all)."""
        self.counters[idx] += np.asarray(counts).astype(np.uint64)

    def random(self, idx: Rows, size: int = 1) -> np.ndarray:
        """(len(idx), size) uniforms in [0, 1)."""
        out = self.peek(idx, size)
        self.counters[idx] += np.uint64(size)
        return out

    def peek(self, idx: Rows, size: int) -> np.ndarray:
        """:meth:`random` without advancing the counters (see :meth:`peek_bits`)."""
        return self._draw(idx, size, _unit)

    def _draw(self, idx: Rows, size: int, finish: Callable[[np.ndarray], np.ndarray] | None) -> np.ndarray:
        """The next ``size`` words of each env in ``idx`` (``finish``-ed: made uniforms), counters kept.

        Each numpy call costs a few microseconds at a batch's size, and draws come at every
        batched step, so the words are mixed in place in one array. A large draw (a batch of
        random MDPs: hundreds of words per env) goes in blocks of rows that stay in the CPU's
        cache through all the passes over them: about 3x faster than whole-array passes.
        """
        counters, keys = self.counters[idx], self.keys[idx]
        rows = len(counters)
        if rows * size <= _BLOCK_WORDS:
            return _words(keys, counters, size, finish)
        out = np.empty((rows, size), dtype=np.uint64 if finish is None else np.float64)
        step = max(1, _BLOCK_WORDS // size)
        for start in range(0, rows, step):
            block = slice(start, start + step)
            out[block] = _words(keys[block], counters[block], size, finish)
        return out

    def uniform(self, idx: Rows, low: Any, high: Any, size: int = 1) -> np.ndarray:
        """(len(idx), size) uniforms in [low, high) (bounds broadcast against the last axis)."""
        return low + (np.asarray(high) - low) * self.random(idx, size)

    def normal(self, idx: Rows, size: int = 1) -> np.ndarray:
        """(len(idx), size) standard normals (Box-Muller, two uniforms each)."""
        u = self.random(idx, 2 * size)
        return box_muller(u[:, :size], u[:, size:])

    def integers(self, idx: Rows, high: Any, size: int = 1) -> np.ndarray:
        """(len(idx), size) int64 in [0, high) (``high`` per env or shared, at most 2^32)."""
        u = self.random(idx, size)
        high = np.asarray(high, dtype=np.int64)
        high = high.reshape(high.shape + (1,) * (u.ndim - high.ndim))
        return np.minimum((u * high).astype(np.int64), high - 1)

    def __getitem__(self, i: int) -> np.random.Generator:
        word = int(self.bits(np.array([i]), 1)[0, 0])
        return np.random.Generator(np.random.PCG64(word))


def box_muller(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Standard normals from two arrays of uniforms in [0, 1) (:meth:`Streams.normal`'s)."""
    radius = np.sqrt(-2.0 * np.log1p(-u))  # 1 - u lies in (0, 1]: log is finite
    return radius * np.cos(2.0 * np.pi * v)


#: The most words :meth:`Streams._draw` makes in one block (256 KiB of them).
_BLOCK_WORDS = 1 << 15


def _words(
    keys: np.ndarray, counters: np.ndarray, size: int, finish: Callable[[np.ndarray], np.ndarray] | None
) -> np.ndarray:
    """(len(keys), size) words of the envs with these keys and counters (uint64 arithmetic wraps)."""
    z: np.ndarray = (
        counters + np.uint64(1) if size == 1 else counters[:, None] + np.arange(1, size + 1, dtype=np.uint64)
    )
    z *= _GAMMA
    z += keys if size == 1 else keys[:, None]
    mix64(z, in_place=True)
    z = z[:, None] if size == 1 else z
    return z if finish is None else finish(z)


def _unit(words: np.ndarray) -> np.ndarray:
    """Uniforms in [0, 1) from uint64 words (their top 53 bits, as numpy's ``Generator.random``);
    overwrites ``words``."""
    words >>= _S11
    out = words.astype(np.float64)
    out *= 2.0**-53
    return out
