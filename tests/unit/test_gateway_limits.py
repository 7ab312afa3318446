"""Per-site token buckets and visitor sampling (web/gateway/limits.py), without a broker."""

from __future__ import annotations

import pytest

from web.gateway.limits import Sampler, SiteRateLimiter, keep, retry_after_s, visitor_bucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_burst_then_refusal_then_refill(clock: Clock) -> None:
    limiter = SiteRateLimiter(events_per_s=10, burst=20, clock=clock)
    assert limiter.acquire({"shop": 20}) == 0.0
    wait = limiter.acquire({"shop": 5})
    assert wait == pytest.approx(0.5)  # 5 tokens at 10/s
    clock.now += 0.5
    assert limiter.acquire({"shop": 5}) == 0.0
    assert limiter.acquire({"shop": 1}) > 0


def test_sites_have_separate_buckets(clock: Clock) -> None:
    limiter = SiteRateLimiter(events_per_s=1, burst=3, clock=clock)
    assert limiter.acquire({"a": 3}) == 0.0
    assert limiter.acquire({"a": 1}) > 0
    assert limiter.acquire({"b": 3}) == 0.0


def test_refused_request_takes_nothing_from_any_site(clock: Clock) -> None:
    limiter = SiteRateLimiter(events_per_s=1, burst=5, clock=clock)
    assert limiter.acquire({"a": 5}) == 0.0
    assert limiter.acquire({"a": 1, "b": 5}) > 0  # a is empty: b must stay full
    assert limiter.acquire({"b": 5}) == 0.0


def test_batch_over_burst_passes_on_full_bucket_and_leaves_debt(clock: Clock) -> None:
    limiter = SiteRateLimiter(events_per_s=100, burst=50, clock=clock)
    assert limiter.acquire({"a": 500}) == 0.0  # would never fit otherwise
    wait = limiter.acquire({"a": 1})
    assert wait == pytest.approx((450 + 1) / 100)  # the debt is paid at the rate


def test_long_run_rate_holds(clock: Clock) -> None:
    limiter = SiteRateLimiter(events_per_s=100, burst=10, clock=clock)
    accepted = 0
    for _ in range(10_000):  # 10 s, a request every ms asking for 1 event
        clock.now += 0.001
        if limiter.acquire({"a": 1}) == 0.0:
            accepted += 1
    assert 1000 <= accepted <= 1000 + 10 + 1


def test_zero_rate_disables(clock: Clock) -> None:
    limiter = SiteRateLimiter(events_per_s=0, burst=1, clock=clock)
    assert not limiter.enabled
    assert all(limiter.acquire({"a": 1000}) == 0.0 for _ in range(100))


def test_idle_buckets_are_pruned(clock: Clock) -> None:
    limiter = SiteRateLimiter(events_per_s=1000, burst=10, clock=clock)
    for i in range(SiteRateLimiter._PRUNE_EVERY - 1):
        limiter.acquire({f"s{i}": 1})
    clock.now += 1.0
    limiter.acquire({"last": 1})
    assert set(limiter._buckets) == {"last"}


@pytest.mark.parametrize(("wait", "header"), [(0.001, 1), (0.5, 1), (1.0, 1), (1.01, 2), (7.9, 8)])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: int) -> None:
    assert retry_after_s(wait) == header


def test_visitor_bucket_is_stable_across_processes() -> None:
    # A fixed value: the hash must not depend on PYTHONHASHSEED or the process.
    assert visitor_bucket("shop", "v1") == visitor_bucket("shop", "v1")
    assert visitor_bucket("shop", "v1") == 0xBCBB261A28353A56
    assert visitor_bucket("shop", "v1") != visitor_bucket("shop2", "v1")


def test_rate_one_keeps_everyone() -> None:
    assert all(keep("shop", f"v{i}", 1) for i in range(1000))


@pytest.mark.parametrize("rate", [2, 4, 10, 64])
def test_sampling_keeps_about_one_in_n_whole_visitors(rate: int) -> None:
    visitors = [f"visitor-{i}" for i in range(20_000)]
    kept = [v for v in visitors if keep("shop", v, rate)]
    expected = len(visitors) / rate
    assert abs(len(kept) - expected) < 5 * (expected**0.5)  # five sigma
    # Whole visitors: the decision never changes between events of one visitor.
    assert all(keep("shop", v, rate) for v in kept)


def test_doubling_rates_keep_nested_sets() -> None:
    visitors = [f"visitor-{i}" for i in range(5000)]
    at_2 = {v for v in visitors if keep("shop", v, 2)}
    at_4 = {v for v in visitors if keep("shop", v, 4)}
    at_8 = {v for v in visitors if keep("shop", v, 8)}
    assert at_8 <= at_4 <= at_2


def test_sampler_fixed_when_ceiling_not_above_base() -> None:
    sampler = Sampler(base=4, ceiling=4, backlog_limit=100)
    assert not sampler.automatic
    assert sampler.observe(10**9) == 4


def test_sampler_doubles_under_backlog_and_comes_back() -> None:
    sampler = Sampler(base=1, ceiling=8, backlog_limit=100)
    assert sampler.automatic
    rates = [sampler.observe(backlog) for backlog in (500, 500, 500, 500, 500)]
    assert rates == [2, 4, 8, 8, 8]
    assert sampler.observe(50) == 8  # between a quarter and the limit: hold
    rates = [sampler.observe(0) for _ in range(4)]
    assert rates == [4, 2, 1, 1]


def test_sampler_stays_on_multiples_of_base() -> None:
    sampler = Sampler(base=3, ceiling=20, backlog_limit=10)
    rates = {sampler.observe(100) for _ in range(10)}
    assert rates == {6, 12}


def test_sampler_rejects_rate_below_one() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        Sampler(base=0, ceiling=1, backlog_limit=1)
