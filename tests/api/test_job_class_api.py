"""The job-class names of the wheel's API that need no database: builders, descriptors,
strategies and their handlers' arity, ActiveJob's class-level values, the conflict aliases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import quebec
from quebec.errors import ConfigError, EnqueueError
from quebec.job import ConfiguredJob
from quebec.retry import rescue_strategies_of


class Boom(Exception):
    pass


class Job(quebec.BaseClass):
    def perform(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_set_returns_a_job_builder_and_build_a_job_descriptor_with_the_wheels_fields() -> None:
    builder = Job.set(queue="mail", wait=30)
    assert isinstance(builder, quebec.JobBuilder) and quebec.JobBuilder is ConfiguredJob
    assert builder.job_class is Job and dict(builder.options) == {"wait": timedelta(seconds=30), "queue": "mail"}
    descriptor = builder.build(1, key="v")
    assert isinstance(descriptor, quebec.JobDescriptor)
    assert (descriptor.job_class, descriptor.args, descriptor.kwargs) == (Job, (1,), {"key": "v"})
    assert (
        dict(descriptor.options) == {"wait": timedelta(seconds=30), "queue": "mail"}
        and descriptor.options["queue"] == "mail"
    )
    assert "priority" not in descriptor.options and dict(Job.build().options) == {}
    assert descriptor.id is None  # built, not enqueued


def test_job_builder_made_as_in_the_wheel_checks_its_options_like_set() -> None:
    assert dict(quebec.JobBuilder(Job, queue="q", priority=2).options) == {"queue": "q", "priority": 2}
    assert dict(quebec.JobBuilder(Job).options) == {}
    until = datetime(2030, 1, 1, tzinfo=UTC)
    assert quebec.JobBuilder(Job, wait_until=until).set(priority=1).build().options["wait_until"] == until
    with pytest.raises(TypeError):
        quebec.JobBuilder(Job, color="blue")


def test_strategies_expose_what_they_were_given_as_the_wheel() -> None:
    handler = lambda job, error: None  # noqa: E731
    retry = quebec.RetryStrategy((Boom, KeyError), timedelta(seconds=5), 3, handler)
    expected = ((Boom, KeyError), timedelta(seconds=5), 3, handler)
    assert (retry.exceptions, retry.wait, retry.attempts, retry.handler) == expected
    single = quebec.DiscardStrategy(Boom, handler)
    assert single.exceptions is Boom and single.handler is handler and single.matches(Boom())
    assert quebec.RescueStrategy([Boom]).exceptions == (Boom,) and quebec.RescueStrategy(Boom).handler is None


def test_handlers_are_called_by_their_arity() -> None:
    calls: list[tuple[Any, ...]] = []
    error, job = Boom("x"), object()
    two = quebec.RescueStrategy(Boom, lambda job, error: calls.append(("two", job, error)))
    one = quebec.DiscardStrategy(Boom, lambda exc: calls.append(("one", exc)))
    optional = quebec.RetryStrategy(Boom, handler=lambda job, error=None: calls.append(("optional", job, error)))
    star = quebec.RescueStrategy(Boom, lambda *args: calls.append(("star", *args)))
    for strategy in (two, one, optional, star):
        strategy.call_handler(job, error)
        assert strategy.job_handler is not None
        strategy.job_handler(job, error)
    assert calls[::2] == [("two", job, error), ("one", error), ("optional", job, error), ("star", job, error)]
    assert calls[1::2] == calls[::2]
    assert two.job_handler is two.handler  # a (job, error) handler is used as it is
    assert quebec.RescueStrategy(Boom).call_handler(job, error) is None


@pytest.mark.parametrize(
    "handler",
    [lambda: None, lambda a, b, c: None, lambda *, error: None],
    ids=["no-argument", "three-arguments", "keyword-only"],
)
def test_a_handler_that_fits_neither_arity_is_refused_when_the_strategy_is_built(handler: Any) -> None:
    for make in (
        lambda: quebec.RetryStrategy(Boom, handler=handler),
        lambda: quebec.DiscardStrategy(Boom, handler),
        lambda: quebec.RescueStrategy(Boom, handler),
    ):
        with pytest.raises(ConfigError, match=r"takes neither \(job, error\) nor \(error\)"):
            make()


def test_register_rescue_strategy_adds_to_that_class_and_its_subclasses_only() -> None:
    class Base(quebec.BaseClass):
        rescue_from = [quebec.RescueStrategy(KeyError)]

    class Child(Base):
        pass

    class Sibling(quebec.BaseClass):
        pass

    first, second = quebec.RescueStrategy(Boom), quebec.RescueStrategy(ValueError)
    assert Base.register_rescue_strategy(first) is None
    Child.register_rescue_strategy(second)
    assert Base.rescue_strategies == [first] and Child.rescue_strategies == [second]
    assert Sibling.rescue_strategies == [] and quebec.BaseClass.rescue_strategies == []
    assert rescue_strategies_of(Child) == [Base.rescue_from[0], second, first]  # rescue_from, nearest class first
    assert rescue_strategies_of(Sibling) == []
    with pytest.raises(ConfigError, match=r"register_rescue_strategy takes a quebec\.RescueStrategy"):
        Base.register_rescue_strategy(quebec.DiscardStrategy(Boom))  # type: ignore[arg-type]


def test_rescue_strategies_in_the_class_body_are_checked_and_used() -> None:
    strategy = quebec.RescueStrategy(Boom)

    class Listed(quebec.BaseClass):
        rescue_strategies = [strategy]

    assert rescue_strategies_of(Listed) == [strategy]
    with pytest.raises(ConfigError, match="rescue_strategies entries must be quebec.RescueStrategy"):

        class Wrong(quebec.BaseClass):
            rescue_strategies = [Boom]


def test_active_job_has_the_wheels_class_level_values_and_refuses_what_it_cannot_do() -> None:
    aj = quebec.ActiveJob
    assert (aj.batch_id, aj.callback_batch_id, aj.concurrency_key, aj.created_at) == (None, None, None, None)
    assert (aj.updated_at, aj.finished_at, aj.executions, aj.rescue_strategies) == (None, None, 0, ())
    assert aj.concurrency_on_conflict is quebec.ConcurrencyConflict.Block and aj.logger.name == "quebec.job"
    assert Job.build(1).arguments is None  # known once planned for insert
    with pytest.raises(EnqueueError, match="not a job class; subclass quebec.BaseClass"):
        aj.perform_later(1)
    with pytest.raises(ConfigError, match="registered on a job class"):
        aj.register_rescue_strategy(quebec.RescueStrategy(Boom))


def test_lower_case_conflict_names_return_the_members_as_the_wheel() -> None:
    assert quebec.ConcurrencyConflict.block() is quebec.ConcurrencyConflict.Block
    assert quebec.ConcurrencyConflict.discard() is quebec.ConcurrencyConflict.Discard
    assert quebec.RateLimitConflict.reschedule() is quebec.RateLimitConflict.Reschedule
    assert quebec.RateLimitConflict.discard() is quebec.RateLimitConflict.Discard
    assert len(quebec.ConcurrencyConflict) == 2 and len(quebec.RateLimitConflict) == 2  # aliases are not members
    assert {"block", "discard", "Block"} <= set(dir(quebec.ConcurrencyConflict))
    assert {"reschedule", "discard"} <= set(dir(quebec.RateLimitConflict))


def test_abort_enqueue_is_a_plain_exception_as_the_wheel() -> None:
    assert issubclass(quebec.AbortEnqueue, Exception) and not issubclass(quebec.AbortEnqueue, quebec.QuebecError)
