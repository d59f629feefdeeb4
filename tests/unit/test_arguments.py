"""The jobs.arguments envelope: byte-compatible with the Rust wheel 0.4.2, and its value codecs.

The WHEEL_* strings were written by `quebec==0.4.2` (`J.perform_later(qc, ...)`, read back with
sqlite3); see docs/arguments.md for how they were produced.
"""

from __future__ import annotations

import enum
import json
import re
from collections import OrderedDict, defaultdict
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from quebec.arguments import (
    Envelope,
    decode_envelope,
    encode_envelope,
    format_naive_utc,
    new_active_job_id,
    with_counters,
)
from quebec.errors import EnqueueError, SerializationError

WHEEL_ROW = (
    '{"arguments":{"arguments":[1,"x",{"a":1},{"_quebec_kwargs":true,"foo":"bar"}],"continuation":{},'
    '"job_class":"J","job_id":"5lgij9p2vf75","priority":0,"queue_name":"default","resumptions":0},'
    '"enqueued_at":"2026-11-23T00:35:53.168550391","exception_executions":{},"executions":0,"job_class":"J",'
    '"job_id":"5lgij9p2vf75","locale":"en","priority":0,"provider_job_id":"5lgij9p2vf75",'
    '"queue_name":"default","scheduled_at":null,"timezone":"UTC"}'
)
# K has queue_as = "mail", priority = 3; enqueued with K.set(queue="other", priority=9).
WHEEL_ROW_WITH_SET = (
    '{"arguments":{"arguments":[2],"continuation":{},"job_class":"K","job_id":"qzp9lwyd1pvz","priority":3,'
    '"queue_name":"mail","resumptions":0},"enqueued_at":"2026-11-23T00:38:47.537799557",'
    '"exception_executions":{},"executions":0,"job_class":"K","job_id":"qzp9lwyd1pvz","locale":"en",'
    '"priority":9,"provider_job_id":"qzp9lwyd1pvz","queue_name":"other","scheduled_at":null,"timezone":"UTC"}'
)
# F raised RuntimeError with no retry_on: the wheel updated the row's counters.
WHEEL_FAILED_ROW = (
    '{"arguments":{"arguments":[1,{"_quebec_kwargs":true,"k":"v"}],"continuation":{},"job_class":"F",'
    '"job_id":"e73olw2a7syl","priority":0,"queue_name":"default","resumptions":0},'
    '"enqueued_at":"2026-11-23T00:39:03.878517496","exception_executions":{"[RuntimeError]":1},"executions":1,'
    '"job_class":"F","job_id":"e73olw2a7syl","locale":"en","priority":0,"provider_job_id":"e73olw2a7syl",'
    '"queue_name":"default","scheduled_at":null,"timezone":"UTC"}'
)
# A Continuable job interrupted before an isolated step: the wheel wrote a new row like this.
WHEEL_RESUMED_ROW = (
    '{"arguments":{"arguments":[3],"continuation":{},"job_class":"C2","job_id":"306w4tk44ypq","priority":0,'
    '"queue_name":"default","resumptions":0},"continuation":{"completed":["one"],"current":null},'
    '"enqueued_at":"2026-11-23T00:40:32.941969911","exception_executions":{},"executions":0,"job_class":"C2",'
    '"job_id":"306w4tk44ypq","locale":"en","priority":0,"provider_job_id":"306w4tk44ypq",'
    '"queue_name":"default","resumptions":1,"scheduled_at":null,"timezone":"UTC"}'
)
ENQUEUED = datetime(2026, 11, 23, 0, 35, 53, 168550)


def encode(*args: Any, class_name: str = "J", **kwargs: Any) -> str:
    return encode_envelope(
        class_name=class_name,
        active_job_id="5lgij9p2vf75",
        queue_name="default",
        priority=0,
        args=args,
        kwargs=kwargs,
        enqueued_at=ENQUEUED,
    )


def round_trip(*args: Any, **kwargs: Any) -> Envelope:
    return decode_envelope(encode(*args, **kwargs))


def test_writes_the_same_bytes_as_the_wheel_but_for_nanoseconds() -> None:
    assert encode(1, "x", {"a": 1}, foo="bar") == WHEEL_ROW.replace(".168550391", ".168550")


def test_puts_the_class_defaults_inside_and_the_effective_queue_and_priority_outside() -> None:
    text = encode_envelope(
        class_name="K",
        active_job_id="qzp9lwyd1pvz",
        queue_name="other",
        priority=9,
        args=[2],
        kwargs={},
        enqueued_at=datetime(2026, 11, 23, 0, 38, 47, 537799),
        class_queue_name="mail",
        class_priority=3,
    )
    assert text == WHEEL_ROW_WITH_SET.replace(".537799557", ".537799")


def test_sorts_keys_inside_arguments_like_the_wheel() -> None:
    text = encode({"b": 1, "a": 2}, z=1, y=2)
    assert '[{"a":2,"b":1},{"_quebec_kwargs":true,"y":2,"z":1}]' in text


@pytest.mark.parametrize("row", [WHEEL_ROW, WHEEL_ROW_WITH_SET, WHEEL_FAILED_ROW, WHEEL_RESUMED_ROW])
def test_counters_rewrite_of_a_wheel_row_changes_nothing_else(row: str) -> None:
    envelope = decode_envelope(row)
    same = with_counters(row, executions=envelope.executions, exception_executions=envelope.exception_executions)
    assert same == row


def test_reads_args_kwargs_and_ids_from_a_wheel_row() -> None:
    envelope = decode_envelope(WHEEL_ROW)
    assert envelope.args == (1, "x", {"a": 1})
    assert envelope.kwargs == {"foo": "bar"}
    assert envelope.active_job_id == "5lgij9p2vf75"
    assert envelope.executions == 0
    assert envelope.exception_executions == {}
    assert envelope.raw["enqueued_at"] == "2026-11-23T00:35:53.168550391"


def test_reads_the_counters_the_wheel_wrote_on_failure() -> None:
    envelope = decode_envelope(WHEEL_FAILED_ROW)
    assert (envelope.args, envelope.kwargs) == ((1,), {"k": "v"})
    assert envelope.executions == 1
    assert envelope.exception_executions == {"[RuntimeError]": 1}


def test_reads_a_resumed_continuable_row() -> None:
    envelope = decode_envelope(WHEEL_RESUMED_ROW)
    assert envelope.args == (3,)
    assert envelope.raw["continuation"] == {"completed": ["one"], "current": None}
    assert envelope.raw["resumptions"] == 1


@pytest.mark.parametrize("text", [None, "", "   "])
def test_a_missing_or_empty_envelope_means_no_arguments(text: str | None) -> None:
    envelope = decode_envelope(text)
    assert envelope == Envelope(args=(), kwargs={}, executions=0, exception_executions={}, active_job_id=None, raw={})


def test_a_minimal_envelope_is_read_with_zero_counters() -> None:
    envelope = decode_envelope('{"arguments": {"arguments": [5, {"a": 1}]}}')
    assert (envelope.args, envelope.kwargs, envelope.executions) == ((5, {"a": 1}), {}, 0)
    assert envelope.active_job_id is None


def test_a_bare_json_array_is_read_as_the_positional_arguments() -> None:
    assert decode_envelope('[1, {"_quebec_kwargs": true, "a": 2}]').args == (1,)
    assert decode_envelope("[1, 2]").raw == {"arguments": {"arguments": [1, 2]}}


def test_counters_of_the_wrong_type_read_as_zero() -> None:
    envelope = decode_envelope(
        '{"arguments": {"arguments": []}, "executions": "2", "exception_executions": {"[E]": true, "[F]": 2}}'
    )
    assert envelope.executions == 0
    assert envelope.exception_executions == {"[E]": 0, "[F]": 2}


@pytest.mark.parametrize("text", ["not json", '"a string"', '{"arguments": {"arguments": 5}}'])
def test_an_unreadable_envelope_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        decode_envelope(text)


def test_no_kwargs_means_no_trailing_dict() -> None:
    assert '"arguments":[1,2]' in encode(1, 2)
    assert '"arguments":[]' in encode()


def test_a_trailing_dict_without_a_true_kwargs_tag_stays_positional() -> None:
    text = '{"arguments": {"arguments": [{"a": 1}, {"_quebec_kwargs": false, "b": 2}]}}'
    envelope = decode_envelope(text)
    assert envelope.args == ({"a": 1}, {"_quebec_kwargs": False, "b": 2})
    assert envelope.kwargs == {}


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**80,
        1.5,
        -0.0,
        1e300,
        5e-324,
        "",
        'é☃ \u2028 \x00\x1f "quoted" \\ </script>',
        [],
        {},
        [1, [2, [3]]],
        {"nested": {"list": [None, True, {"k": "v"}]}},
    ],
)
def test_plain_json_values_round_trip_as_themselves(value: Any) -> None:
    envelope = round_trip(value, kw=value)
    assert envelope.args == (value,)
    assert envelope.kwargs == {"kw": value}
    assert type(envelope.args[0]) is type(value)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 2, 3, 4, 5, 123456),
        datetime(2026, 1, 2, 3, 4, 5),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        date(2026, 1, 2),
        time(3, 4, 5, 6),
        time(3, 4, tzinfo=timezone(timedelta(hours=2))),
        timedelta(0),
        timedelta(seconds=90),
        timedelta(days=-1, seconds=5, microseconds=7),
        timedelta(days=3000, microseconds=999_999),
        timedelta(days=999_999_999),
        UUID("9fb8739b-55ff-4854-ab9a-a80e5da37814"),
        Decimal("1.10"),
        Decimal("-0"),
        Decimal("1E+3"),
        Decimal("NaN"),
    ],
    ids=repr,
)
def test_tagged_types_round_trip_exactly(value: Any) -> None:
    envelope = round_trip([value], when=value)
    assert envelope.args[0][0] == value or (isinstance(value, Decimal) and value.is_nan())
    assert type(envelope.args[0][0]) is type(value)
    assert str(envelope.kwargs["when"]) == str(value)
    if isinstance(value, datetime | time):
        assert envelope.args[0][0].utcoffset() == value.utcoffset()


def test_tagged_values_are_plain_json_dicts_for_other_readers() -> None:
    text = encode(
        datetime(2026, 1, 2, tzinfo=UTC),
        date(2026, 1, 2),
        timedelta(seconds=1.5),
        UUID(int=5),
        Decimal("1.10"),
    )
    assert json.loads(text)["arguments"]["arguments"] == [
        {"_quebec_type": "datetime", "value": "2026-01-02T00:00:00+00:00"},
        {"_quebec_type": "date", "value": "2026-01-02"},
        {"_quebec_type": "timedelta", "value": 1.5},
        {"_quebec_type": "uuid", "value": "00000000-0000-0000-0000-000000000005"},
        {"_quebec_type": "decimal", "value": "1.10"},
    ]


def test_raw_keeps_tagged_values_as_json_so_it_can_be_written_again() -> None:
    envelope = round_trip(date(2026, 1, 2))
    assert envelope.args == (date(2026, 1, 2),)
    assert envelope.raw["arguments"]["arguments"] == [{"_quebec_type": "date", "value": "2026-01-02"}]
    json.dumps(envelope.raw)


def test_tuples_come_back_as_lists_as_with_the_wheel() -> None:
    envelope = round_trip((1, (2, 3)), point=(4, 5))
    assert envelope.args == ([1, [2, 3]],)
    assert envelope.kwargs == {"point": [4, 5]}


def test_int_and_str_enums_are_stored_as_their_values() -> None:
    class Size(enum.IntEnum):
        BIG = 2

    class Colour(enum.StrEnum):
        RED = "red"

    assert round_trip(Size.BIG, Colour.RED).args == (2, "red")


def test_a_str_mentioning_the_type_tag_is_left_alone() -> None:
    assert round_trip("_quebec_type", ["_quebec_type"]).args == ("_quebec_type", ["_quebec_type"])


def test_an_unknown_tag_kind_stays_a_dict() -> None:
    text = '{"arguments": {"arguments": [{"_quebec_type": "money", "value": "1 EUR"}]}}'
    assert decode_envelope(text).args == ({"_quebec_type": "money", "value": "1 EUR"},)


@pytest.mark.parametrize(
    "tagged",
    [
        '{"_quebec_type": "date", "value": "yesterday"}',
        '{"_quebec_type": "decimal", "value": "1,5"}',
        '{"_quebec_type": "uuid", "value": 5}',
        '{"_quebec_type": "timedelta", "value": "90"}',
        '{"_quebec_type": "timedelta", "value": true}',
    ],
)
def test_a_malformed_tagged_value_raises_value_error(tagged: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        decode_envelope(f'{{"arguments": {{"arguments": [{tagged}]}}}}')


class Colour(enum.Enum):
    RED = (255, 0, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1, 2, {3}), r"^args\[2\] of EmailJob \(a set\) cannot be stored as JSON; pass a list instead$"),
        ((frozenset(),), r"^args\[0\] of EmailJob \(a frozenset\) .*pass a list instead$"),
        ((b"\x00",), r"^args\[0\] of EmailJob \(a bytes\) .*decode it to a str"),
        ((object(),), r"^args\[0\] of EmailJob \(an object\) .*e\.g\. the object's id$"),
        ((lambda: 1,), r"^args\[0\] of EmailJob \(a function\) .*jobs cannot carry code"),
        ((Colour.RED,), r"^args\[0\] of EmailJob \(a test_arguments\.Colour\) .*pass its \.value instead$"),
        ((float("nan"),), r"^args\[0\] of EmailJob \(a float nan\) .*pass None or a string"),
        (([1, float("inf")],), r"^args\[0\]\[1\] of EmailJob \(a float inf\) "),
        (({1: "a"},), r"^args\[0\] of EmailJob \(a dict with an int key 1\) .*convert its keys to str$"),
        (({"a": [{None: 1}]},), r"^args\[0\]\['a'\]\[0\] of EmailJob \(a dict with a NoneType key None\)"),
        ((["ok", {(1, 2): 3}],), r"^args\[0\]\[1\] of EmailJob \(a dict with a tuple key \(1, 2\)\)"),
        (("\udc80",), r"^args\[0\] of EmailJob \(a str with an unpaired surrogate\) "),
        (({"_quebec_type": "date", "value": "x"},), r"^args\[0\] .*reserved key '_quebec_type'"),
        ((1, {"_quebec_kwargs": True}), r"^args\[1\] of EmailJob .*read back as keyword arguments"),
    ],
)
def test_unstorable_arguments_raise_naming_position_type_and_fix(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        encode(*args, class_name="EmailJob")


def test_an_unstorable_keyword_argument_is_named_by_keyword() -> None:
    with pytest.raises(SerializationError, match=r"^kwargs\['when'\]\['at'\] of EmailJob \(a set\)"):
        encode(1, class_name="EmailJob", when={"at": {1}})


def test_keyword_names_must_be_str_and_not_reserved() -> None:
    with pytest.raises(SerializationError, match="keyword argument 1 of J is an int"):
        bad_names: Any = {1: 2}
        encode_envelope(
            class_name="J",
            active_job_id="x",
            queue_name="q",
            priority=0,
            args=[],
            kwargs=bad_names,
            enqueued_at=ENQUEUED,
        )
    with pytest.raises(SerializationError, match="'_quebec_kwargs' of J is reserved"):
        encode(_quebec_kwargs=1)


def test_a_list_that_contains_itself_is_refused() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    message = r"^kwargs\['items'\]\[1\] of J \(a list that contains itself\)"
    with pytest.raises(SerializationError, match=message):
        encode(items=loop)


def test_serialization_error_is_an_enqueue_error_and_a_type_error() -> None:
    with pytest.raises(EnqueueError):
        encode({1})
    with pytest.raises(TypeError):
        encode({1})


def test_with_counters_updates_only_the_counters() -> None:
    text = with_counters(WHEEL_ROW, executions=2, exception_executions={"[ValueError, KeyError]": 2})
    expected = WHEEL_ROW.replace(
        '"exception_executions":{},"executions":0',
        '"exception_executions":{"[ValueError, KeyError]":2},"executions":2',
    )
    assert text == expected


def test_with_counters_writes_continuation_at_the_top_level_like_the_wheel() -> None:
    text = with_counters(
        WHEEL_ROW.replace("5lgij9p2vf75", "306w4tk44ypq").replace('"J"', '"C2"'),
        executions=0,
        exception_executions={},
        continuation={"completed": ["one"], "current": None},
        resumptions=1,
    )
    raw = json.loads(text)
    assert raw["continuation"] == {"completed": ["one"], "current": None}
    assert raw["resumptions"] == 1
    assert raw["arguments"]["continuation"] == {}


def test_with_counters_keeps_tagged_values_and_unicode_as_written() -> None:
    original = encode(date(2026, 1, 2), "é☃", n=Decimal("2.50"))
    rebuilt = with_counters(original, executions=1, exception_executions={"[E]": 1})
    assert rebuilt == original.replace(
        '"exception_executions":{},"executions":0', '"exception_executions":{"[E]":1},"executions":1'
    )


def test_with_counters_on_an_empty_envelope_writes_just_the_counters() -> None:
    assert with_counters(None, executions=1, exception_executions={}) == ('{"exception_executions":{},"executions":1}')


def test_active_job_ids_look_like_the_wheels() -> None:
    ids = {new_active_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-z]{12}", job_id) for job_id in ids)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 23, 0, 35, 53), "2026-11-23T00:35:53"),
        (datetime(2026, 11, 23, 0, 35, 53, 168000), "2026-11-23T00:35:53.168"),
        (datetime(2026, 11, 23, 0, 35, 53, 168550), "2026-11-23T00:35:53.168550"),
        (datetime(2026, 11, 23, 2, 0, tzinfo=timezone(timedelta(hours=2))), "2026-11-23T00:00:00"),
    ],
)
def test_enqueued_at_is_naive_utc_with_the_fraction_digits_chrono_would_print(moment: datetime, text: str) -> None:
    assert format_naive_utc(moment) == text


def test_dict_subclasses_are_checked_and_str_enum_keys_accepted() -> None:
    class Field(enum.StrEnum):
        NAME = "name"

    assert round_trip(OrderedDict([(Field.NAME, 1)])).args == ({"name": 1},)
    with pytest.raises(SerializationError, match=r"^args\[0\]\[0\] of J \(a dict with an int key 1\)"):
        encode((defaultdict(list, {1: []}),))


def _fields(args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "class_name": "J",
        "active_job_id": "5lgij9p2vf75",
        "queue_name": "default",
        "priority": 0,
        "args": args,
        "kwargs": kwargs or {},
        "enqueued_at": ENQUEUED,
    }


def _nested(depth: int, leaf: Any = None) -> Any:
    value: Any = [] if leaf is None else leaf
    for _ in range(depth - (1 if leaf is None else 0)):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [101, 1_000, 100_000])
def test_arguments_nested_too_deep_are_one_sentence_not_a_recursion_error(depth: int) -> None:
    # Depth ~1,000 was a RecursionError from the encoder (and again from the explanation).
    for encode in (
        lambda: encode_envelope(**_fields(args=(1, _nested(depth)))),
        lambda: encode_envelope(**_fields(args=(1, _nested(depth))), executions=1),
        lambda: encode_envelope(**_fields(kwargs={"tree": {"a": _nested(depth)}})),
    ):
        with pytest.raises(SerializationError) as caught:
            encode()
        message = str(caught.value)
        assert "more than 100 levels deep" in message and "\n" not in message
        assert message.startswith(("args[1] of J", "kwargs['tree'] of J"))


def test_arguments_nested_100_deep_are_stored_and_read_back() -> None:
    value = _nested(99, leaf={"k": "v"})
    assert decode_envelope(encode_envelope(**_fields(args=(value,)))).args == (value,)


def test_a_cycle_is_still_reported_as_a_cycle() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match=r"args\[0\]\[0\] of J \(a list that contains itself\)"):
        encode_envelope(**_fields(args=(loop,)))
