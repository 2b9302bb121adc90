"""tinybin.timing (interleaved rounds, medians, per-round ratios) and tinybin.threads (one policy)."""
import numba
import pytest

from tinybin import threads, timing


def test_compare_interleaves_rounds_and_takes_per_round_ratios():
    order = []

    def fake(name, secs):
        def f():
            order.append(name)
        return timing.SelfTimed(lambda: (f(), secs[len([o for o in order if o == name]) - 1])[1])

    # self-reported times (warm-up call first): a = 1, 10, 1 s and b = 2, 20, 2 s per round; a
    # load spike in round 2 hits both, and the per-round ratio b/a stays 2
    t = timing.compare({"a": fake("a", [1.0, 1.0, 10.0, 1.0]), "b": fake("b", [2.0, 2.0, 20.0, 2.0])},
                       rounds=3, warmup=1, pause=0)
    assert order == ["a", "b", "a", "b", "a", "b", "a", "b"]  # warm-up, then interleaved rounds
    assert t.rounds["a"].tolist() == [1.0, 10.0, 1.0]
    assert t.median("a") == 1.0 and t.median("b") == 2.0
    assert t.ratio("b", "a") == 2.0


def test_compare_rejects_bad_counts():
    with pytest.raises(ValueError, match="rounds"):
        timing.compare({"f": lambda: None}, rounds=0)
    with pytest.raises(ValueError, match="at least one"):
        timing.compare({})
    assert timing.median_time(lambda: sum(range(100)), rounds=3) > 0


def test_thread_policy_sets_and_restores_both_pools():
    n0, b0 = threads.get_num_threads()
    assert b0 in (None, 1) or b0 >= 1
    with threads.limit(1):
        assert threads.get_num_threads()[0] == 1
        with threads.numba_only():
            assert threads.get_num_threads()[1] in (None, 1)
    assert threads.get_num_threads()[0] == n0
    big = numba.config.NUMBA_NUM_THREADS + 5
    with threads.limit(big):  # clamped to the pool size
        assert threads.get_num_threads()[0] == numba.config.NUMBA_NUM_THREADS
    with pytest.raises(ValueError, match=">= 1"):
        threads.set_num_threads(0)


def test_default_policy_is_one_thread_unless_asked(monkeypatch):
    n0 = numba.get_num_threads()
    try:
        monkeypatch.setenv("TINYBIN_THREADS", "1")
        threads.apply_defaults()
        assert numba.get_num_threads() == 1
        monkeypatch.setenv("TINYBIN_THREADS", "zero")
        with pytest.raises(ValueError, match="TINYBIN_THREADS"):
            threads.apply_defaults()
    finally:
        numba.set_num_threads(n0)
