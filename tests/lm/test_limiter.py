"""RateLimiter: token buckets for requests and tokens per minute, fair and shared across threads."""

from __future__ import annotations

import threading
import time

import pytest

from cscprog.lm.limiter import RateLimiter, estimate_tokens


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_estimate_is_prompt_chars_over_four_plus_max_tokens():
    assert estimate_tokens(400, 100) == 200
    assert estimate_tokens(400, None) == 100
    assert estimate_tokens(0, None) == 1


def test_requests_per_minute_spaces_calls_evenly():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, clock=clock, sleep=clock.sleep)
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 1.0, 2.0, 3.0])


def test_bucket_refills_with_time_but_not_beyond_its_capacity():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, burst_seconds=2.0, clock=clock, sleep=clock.sleep)
    assert [limiter.reserve() for _ in range(2)] == [0.0, 0.0]  # a burst of 2
    assert limiter.reserve() == pytest.approx(1.0)
    clock.now += 100.0  # long idle: refills to 2, not 100
    assert [limiter.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 1.0])


def test_tokens_per_minute_waits_for_tokens_and_reconciles_with_real_usage():
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=6000, clock=clock, sleep=clock.sleep)  # 100 tokens/s, bucket 100
    assert limiter.acquire(100) == 0.0
    assert limiter.reserve(50) == pytest.approx(0.5)  # bucket empty: 50 tokens take 0.5 s
    limiter.reconcile(estimated=50, actual=10)  # the call used 10: 40 come back
    assert limiter.reserve(40) == pytest.approx(0.5)  # level -50+40=-10: needs 40 -> 0.5 s


def test_a_call_larger_than_the_bucket_is_not_starved():
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=600, clock=clock, sleep=clock.sleep)  # 10 tokens/s, bucket 10
    assert limiter.acquire(500) == 0.0  # runs now, leaves a debt
    assert limiter.reserve(10) == pytest.approx(50.0)  # the debt is paid before the next call


def test_both_limits_the_longer_wait_wins():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=600, tokens_per_minute=600, clock=clock, sleep=clock.sleep)
    limiter.acquire(10)
    assert limiter.reserve(10) == pytest.approx(1.0)  # tokens: 10/s -> 1 s; requests: 0.1 s


def test_threads_share_one_limiter_and_the_rate_holds():
    limiter = RateLimiter(requests_per_minute=1200)  # 20/s; a full bucket holds one second: 20 calls
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(9):
            limiter.acquire()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(starts) == 36
    assert max(starts) - began >= (36 - 20) / 20 - 0.02  # 20 at once, then 20/s: the last starts >= 0.8 s in
    assert limiter.calls == 36


@pytest.mark.parametrize("kwargs", [{"requests_per_minute": 0}, {"tokens_per_minute": -1}, {"burst_seconds": 0}])
def test_invalid_rates_are_refused(kwargs):
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)


def test_unlimited_limiter_never_waits():
    limiter = RateLimiter()
    assert not limiter.limited
    assert all(limiter.acquire(10**6) == 0.0 for _ in range(100))
