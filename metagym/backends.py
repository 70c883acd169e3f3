"""Where metagym's units of work run: in this process, or as Ray tasks on a cluster.

A unit of work is a plain function call whose result depends only on its arguments (a sweep's
run, an evaluation's block of tasks), so both backends return the same results in the same
order. Ray (``pip install "metagym-rl[ray]"``) is used through Ray Core only: each call is one
Ray task asking for one CPU (or as many as the caller says), retried by Ray if its worker
dies; objects every call shares (an agent) are put in Ray's object store once. With no
``address`` Ray starts on this machine; ``address="auto"`` or ``"ray://host:10001"`` joins a
running cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from metagym.errors import ArgumentError

BACKENDS = ("local", "ray")


def check_backend(backend: str, name: str = "backend") -> None:
    """Refuse a backend that is not one of :data:`BACKENDS`, naming the argument."""
    if backend not in BACKENDS:
        raise ArgumentError(name, f"{backend!r} is not allowed; allowed: {', '.join(BACKENDS)}")


def start_ray(address: str | None = None) -> Any:
    """The ``ray`` module, connected: to ``address``, or to a Ray started here."""
    try:
        import ray
    except ImportError:
        raise ArgumentError("backend", "'ray' needs the ray extra: pip install 'metagym-rl[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return ray


def map_calls(
    fn: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
    backend: str = "local",
    address: str | None = None,
    shared: tuple[Any, ...] = (),
    done: Callable[[int, Any], None] | None = None,
    cpus: Sequence[int] | None = None,
) -> list[Any]:
    """``[fn(*shared, *call) for call in calls]``, on ``backend``; results in the order of ``calls``.

    ``done(i, result)`` is called as each call finishes (in finishing order on Ray), for a
    progress bar. ``shared`` is shipped to Ray once, not once per call. ``cpus[i]``: the CPUs
    Ray reserves for call ``i`` (default 1 each).
    """
    check_backend(backend)
    results: list[Any] = [None] * len(calls)
    if backend == "local":
        for i, call in enumerate(calls):
            results[i] = fn(*shared, *call)
            if done is not None:
                done(i, results[i])
        return results
    ray = start_ray(address)
    remote = ray.remote(num_cpus=1, max_retries=2)(fn)
    refs = [ray.put(value) for value in shared]
    counts = [1] * len(calls) if cpus is None else list(cpus)
    pending = {remote.options(num_cpus=counts[i]).remote(*refs, *call): i for i, call in enumerate(calls)}
    while pending:
        finished, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(finished[0])
        results[i] = ray.get(finished[0])
        if done is not None:
            done(i, results[i])
    return results
