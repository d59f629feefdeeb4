"""Retry maths and outcome.decide(): pure, no database."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest

import quebec
from quebec.errors import ConfigError
from quebec.outcome import Discarded, Failed, RetryAt, decide


class Boom(Exception):
    pass


def test_attempts_count_total_runs_like_activejob() -> None:
    s = quebec.RetryStrategy(Boom, wait=0, attempts=3)

    class J(quebec.BaseClass):
        retry_on = [s]

    assert isinstance(decide(J, Boom(), {}), RetryAt)
    assert isinstance(decide(J, Boom(), {"[Boom]": 1}), RetryAt)
    assert isinstance(decide(J, Boom(), {"[Boom]": 2}), Failed)


def test_attempts_one_means_no_retry() -> None:
    class J(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy(Boom, wait=5, attempts=1)]

    assert isinstance(decide(J, Boom(), {}), Failed)


def test_exhausted_strategy_with_handler_discards_and_names_handler() -> None:
    handler = lambda job, error: None  # noqa: E731

    class J(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy(Boom, wait=0, attempts=1, handler=handler)]

    outcome = decide(J, Boom("x"), {})
    assert isinstance(outcome, Discarded) and outcome.handler is handler and outcome.reason == "retry_exhausted"


def test_exhausted_strategy_without_handler_falls_to_discard_then_rescue() -> None:
    class J(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy(Boom, wait=0, attempts=1)]
        discard_on = [Boom]

    assert decide(J, Boom(), {}).reason == "discard_on"  # type: ignore[union-attr]

    class K(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy(Boom, wait=0, attempts=1)]
        rescue_from = [quebec.RescueStrategy(Boom, handler=lambda j, e: None)]

    assert decide(K, Boom(), {}).reason == "rescue_from"  # type: ignore[union-attr]


def test_first_matching_strategy_wins_and_exhaustion_does_not_fall_to_later_retries() -> None:
    class J(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy(Boom, wait=0, attempts=1), quebec.RetryStrategy(Exception, wait=0, attempts=5)]

    assert isinstance(decide(J, Boom(), {}), Failed)
    assert isinstance(decide(J, ValueError(), {}), RetryAt)


def test_discard_checked_before_rescue() -> None:
    class J(quebec.BaseClass):
        discard_on = [quebec.DiscardStrategy(Boom)]
        rescue_from = [quebec.RescueStrategy(Boom)]

    assert decide(J, Boom(), {}).reason == "discard_on"  # type: ignore[union-attr]


def test_counter_key_lists_exception_names_like_the_wheel() -> None:
    s = quebec.RetryStrategy((ConnectionError, TimeoutError), wait=0)
    assert s.key == "[ConnectionError, TimeoutError]"


@pytest.mark.parametrize(
    ("wait", "attempt", "low", "high"),
    [
        (timedelta(seconds=30), 1, 30, 34.5),
        (5, 3, 5, 5.75),
        (lambda n: n * 10, 2, 20, 23),
        ("linear", 3, 9, 10.35),
        ("exponential", 3, 12, 13.8),
        ("polynomially_longer", 2, 18, 20.7),
    ],
)
def test_wait_forms_give_delay_with_bounded_jitter(wait: object, attempt: int, low: float, high: float) -> None:
    s = quebec.RetryStrategy(Boom, wait=wait)  # type: ignore[arg-type]
    for _ in range(20):
        assert low <= s.delay(attempt) <= high


def test_jitter_zero_gives_exact_delay() -> None:
    assert quebec.RetryStrategy(Boom, wait="exponential", base=2, jitter=0).delay(4) == 16


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"attempts": 0}, "attempts must be an integer ≥ 1"),
        ({"wait": -1}, "must not be negative"),
        ({"wait": "sometimes"}, "is not a backoff"),
        ({"handler": 3}, "handler must be callable"),
    ],
)
def test_bad_strategy_raises_at_definition(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        quebec.RetryStrategy(Boom, **kwargs)  # type: ignore[arg-type]


def test_strategy_without_exception_classes_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one exception class"):
        quebec.RetryStrategy("Boom")  # type: ignore[arg-type]


def test_wait_callable_returning_nonsense_is_a_clear_error() -> None:
    s = quebec.RetryStrategy(Boom, wait=lambda n: "soon")  # type: ignore[arg-type, return-value]
    with pytest.raises(ConfigError, match=r"RetryStrategy wait\(1\)"):
        s.delay(1)


def test_retry_on_entries_must_be_strategies() -> None:
    with pytest.raises(ConfigError, match="Bad.retry_on entries"):

        class Bad(quebec.BaseClass):
            retry_on = [ValueError]  # type: ignore[list-item]


def test_overriding_init_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="defines __init__"):

        class Bad(quebec.BaseClass):
            def __init__(self) -> None:
                pass


def test_bad_timeout_is_refused_at_class_creation() -> None:
    with pytest.raises(ConfigError, match="timeout must be seconds > 0"):

        class Bad(quebec.BaseClass):
            timeout = -1


@pytest.mark.parametrize(
    ("args", "kwargs", "queues"),
    [
        ((), {}, (None, None)),
        ((1, "é", {"b": 1, "a": [None, True, 2.5]}), {"z": 1, "k": "x"}, ("class_q", 3)),
        (('quote"back\\slash\n',), {}, (None, 7)),
    ],
)
def test_fresh_envelope_fast_path_matches_the_general_encoder(args: tuple, kwargs: dict, queues: tuple) -> None:
    import json
    from datetime import datetime

    from quebec.arguments import decode_envelope, encode_envelope, with_counters

    at = datetime(2026, 11, 23, 1, 2, 3, 456789)
    fast = encode_envelope(
        class_name="A.<locals>.J",
        active_job_id="abc123def456",
        queue_name='q"1',
        priority=-2,
        args=args,
        kwargs=kwargs,
        enqueued_at=at,
        class_queue_name=queues[0],
        class_priority=queues[1],
    )
    general = with_counters(fast, executions=0, exception_executions={})
    assert fast == general == json.dumps(json.loads(fast), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    decoded = decode_envelope(fast)
    assert decoded.args == tuple(json.loads(json.dumps(list(args)))) and decoded.kwargs == kwargs


def test_seed_flow_options_are_enforced_so_they_no_longer_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")

        class RebuildJob(quebec.BaseClass):
            exclusive = True
            concurrency_limit = 1
            rate_limit_max = 5
            rate_limit_duration = timedelta(seconds=2)

            def perform(self) -> None:
                pass

    assert quebec.RateLimitConflict.Reschedule != quebec.RateLimitConflict.Discard
