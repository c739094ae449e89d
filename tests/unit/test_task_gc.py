"""task_gc: a larger young GC generation while a task works, the previous thresholds back afterwards."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from od_scheduler.task_gc import YOUNG_THRESHOLD, task_gc

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield (700, 10, 10)
    gc.set_threshold(*before)


def test_raises_the_young_threshold_and_restores_it() -> None:
    with task_gc():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restores_after_an_exception() -> None:
    with pytest.raises(RuntimeError), task_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_never_lowers_a_larger_threshold() -> None:
    gc.set_threshold(100_000, 5, 5)
    with task_gc():
        assert gc.get_threshold() == (100_000, 5, 5)
    assert gc.get_threshold() == (100_000, 5, 5)


def test_leaves_a_disabled_collector_alone() -> None:
    gc.disable()
    try:
        with task_gc():
            assert gc.get_threshold() == (700, 10, 10)
            assert not gc.isenabled()
    finally:
        gc.enable()


def test_nested_uses_restore_once_at_the_outermost_end() -> None:
    with task_gc():
        with task_gc(young=5):
            assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_concurrent_uses_ending_in_any_order_restore_the_original() -> None:
    inside = threading.Barrier(3)
    leave = threading.Event()

    def work() -> None:
        with task_gc():
            inside.wait()
            leave.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    with task_gc():
        inside.wait()
        leave.set()
        for t in threads:
            t.join()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)  # the main thread still works
    assert gc.get_threshold() == (700, 10, 10)


def test_cyclic_garbage_is_still_collected() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with task_gc():
        ref = weakref.ref(Node())
        gc.collect()
        assert ref() is None
