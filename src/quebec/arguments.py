"""The `jobs.arguments` envelope, byte-compatible with the Rust wheel 0.4.2, and its value codecs.

Arguments are JSON, never pickle. Plain JSON values round-trip as themselves; datetime, date,
time, timedelta, UUID and Decimal travel as tagged dicts `{"_quebec_type": kind, "value": ...}`
(docs/arguments.md says why). Anything else raises SerializationError at enqueue time; the
rules and their errors are in quebec.argument_rules.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from quebec.argument_rules import (
    KWARGS_TAG,
    MAX_DEPTH,  # noqa: F401 - part of this module's interface, as before the rules moved out
    check_depth,
    check_keys,
    explain,
    refuse_reserved,
)
from quebec.encryption import ENCRYPTED_TAG, Cipher, open_sealed, sealed_token
from quebec.job_ids import new_active_job_id, new_active_job_ids  # noqa: F401 - part of this module's interface
from quebec.values import TYPE_TAG, encode_value, revive


@dataclass(frozen=True, slots=True)
class Envelope:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    executions: int
    exception_executions: dict[str, int]
    active_job_id: str | None
    raw: dict[str, Any]  # the parsed top-level dict, plain JSON (tagged values not revived); read-only


def encode_envelope(
    *,
    class_name: str,
    active_job_id: str,
    queue_name: str,
    priority: int,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    enqueued_at: datetime,
    executions: int = 0,
    exception_executions: Mapping[str, int] | None = None,
    class_queue_name: str | None = None,
    class_priority: int | None = None,
) -> str:
    """The envelope as compact JSON with sorted keys, exactly the key set the wheel writes.

    The wheel puts the class's own `queue_as`/`priority` in the inner dict and the effective
    ones (after `.set(queue=..., priority=...)`) in the outer; pass `class_queue_name` and
    `class_priority` when they differ.
    """
    if executions == 0 and not exception_executions:
        return FreshEnvelope(
            class_name=class_name,
            queue_name=queue_name,
            priority=priority,
            enqueued_at=enqueued_at,
            class_queue_name=class_queue_name,
            class_priority=class_priority,
        ).render(active_job_id, args, kwargs)
    arguments = [*args, {**kwargs, KWARGS_TAG: True}] if kwargs else list(args)
    envelope = {
        "arguments": {
            "arguments": arguments,
            "continuation": {},
            "job_class": class_name,
            "job_id": active_job_id,
            "priority": priority if class_priority is None else class_priority,
            "queue_name": queue_name if class_queue_name is None else class_queue_name,
            "resumptions": 0,
        },
        "enqueued_at": format_naive_utc(enqueued_at),
        "exception_executions": dict(exception_executions or {}),
        "executions": executions,
        "job_class": class_name,
        "job_id": active_job_id,
        "locale": "en",
        "priority": priority,
        "provider_job_id": active_job_id,
        "queue_name": queue_name,
        "scheduled_at": None,
        "timezone": "UTC",
    }
    refuse_reserved(class_name, args, kwargs)
    try:
        text = json.dumps(
            envelope,
            default=encode_value,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        check_keys(arguments)  # after dumps, which has refused cycles, so the walk ends
        if not text.isascii():
            text.encode("utf-8")  # a lone surrogate (os.fsdecode of a bad file name) has no UTF-8 form
    except (TypeError, ValueError, RecursionError) as exc:
        raise explain(class_name, args, kwargs, exc) from None
    check_depth(class_name, args, kwargs, text)
    return text


def decode_envelope(text: str | None, cipher: Cipher | None = None) -> Envelope:
    """Read an envelope written by Quebec or the wheel; a missing or empty one means no arguments.

    Raises ValueError when the text is not JSON or a tagged value is malformed, and
    EncryptionError (a ValueError) when the arguments are sealed and `cipher` cannot open
    them: the job cannot run.
    """
    if not text or not text.strip():
        return Envelope(args=(), kwargs={}, executions=0, exception_executions={}, active_job_id=None, raw={})
    raw = _normalise(json.loads(text))
    arguments = _argument_list(raw)
    if TYPE_TAG in text:
        arguments = _argument_list(_normalise(json.loads(text, object_hook=revive)))
    if len(arguments) == 1 and (token := sealed_token(arguments[0])) is not None:
        opened = json.loads(open_sealed(token, cipher, "this job's arguments"), object_hook=revive)
        if not isinstance(opened, list):
            raise ValueError(f"encrypted arguments hold {type(opened).__name__}, not an argument list")
        arguments = opened
    kwargs: dict[str, Any] = {}
    if arguments and isinstance(arguments[-1], dict) and arguments[-1].get(KWARGS_TAG) is True:
        kwargs = {k: v for k, v in arguments[-1].items() if k != KWARGS_TAG}
        arguments = arguments[:-1]
    inner = raw.get("arguments")
    job_id = (
        raw.get("job_id") or raw.get("provider_job_id") or (inner.get("job_id") if isinstance(inner, dict) else None)
    )
    return Envelope(
        args=tuple(arguments),
        kwargs=kwargs,
        executions=_count(raw.get("executions")),
        exception_executions=_counters(raw.get("exception_executions")),
        active_job_id=str(job_id) if job_id else None,
        raw=raw,
    )


def with_counters(
    raw_text: str | None,
    *,
    executions: int,
    exception_executions: Mapping[str, int],
    continuation: Mapping[str, Any] | None = None,
    resumptions: int | None = None,
) -> str:
    """The same envelope with new counters, for a retry row or a failed job; all else kept as is.

    `continuation`/`resumptions`, when given, are written at the top level, where the wheel
    puts them when it resumes an interrupted `Continuable` job (the inner ones stay untouched).
    """
    raw = _normalise(json.loads(raw_text)) if raw_text and raw_text.strip() else {}
    raw["executions"] = executions
    raw["exception_executions"] = dict(exception_executions)
    if continuation is not None:
        raw["continuation"] = dict(continuation)
    if resumptions is not None:
        raw["resumptions"] = resumptions
    # allow_nan: keep whatever a foreign writer stored; we only touch the counters.
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_naive_utc(value: datetime) -> str:
    """ISO 8601 without offset, with 0, 3 or 6 fraction digits, as chrono prints the same instant."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    micros = value.microsecond
    if micros == 0:
        fraction = ""
    elif micros % 1000 == 0:
        fraction = f".{micros // 1000:03d}"
    else:
        fraction = f".{micros:06d}"
    return value.replace(microsecond=0).isoformat() + fraction


def _normalise(parsed: Any) -> dict[str, Any]:
    if isinstance(parsed, dict):
        return parsed
    if isinstance(parsed, list):  # a bare argument list (recurring_tasks.arguments style)
        return {"arguments": {"arguments": parsed}}
    raise ValueError(f"jobs.arguments must be a JSON object or array, got {type(parsed).__name__}")


def _argument_list(raw: dict[str, Any]) -> list[Any]:
    inner = raw.get("arguments")
    found = inner.get("arguments", []) if isinstance(inner, dict) else inner
    if found is None:
        return []
    if not isinstance(found, list):
        raise ValueError(f"jobs.arguments holds no argument list (found {type(found).__name__})")
    return found


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _counters(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): _count(v) for k, v in value.items()}


_dumps_str = json.JSONEncoder(ensure_ascii=False).encode
_dumps_args = json.JSONEncoder(
    default=encode_value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
_json_str = functools.lru_cache(maxsize=4096)(_dumps_str)  # class and queue names repeat


def _make_args_encoder() -> Callable[[Any], str]:
    """_dumps_args without its set-up: JSONEncoder.encode makes a new C encoder on every
    call (1 µs, three times the work of encoding `[42]`). This one is made once. It skips the
    cycle check (markers=None): a cycle raises RecursionError in C, reported as for any
    unstorable argument."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return _dumps_args
    encode = make(None, encode_value, json.encoder.encode_basestring, None, ":", ",", True, False, False)
    return lambda value: "".join(encode(value, 0))


_encode_args = _make_args_encoder()


class FreshEnvelope:
    """The envelope of new jobs that share class, queues, priorities and enqueue time.

    Only the arguments and the id differ from job to job, so the rest is laid out once and a
    bulk enqueue pays one JSON encode per job. The bytes are those of json.dumps(envelope,
    sort_keys=True, separators=(",", ":")) (the tests compare both).
    """

    __slots__ = ("class_name", "_head", "_mid", "_mid2", "_tail", "_seal")

    def __init__(
        self,
        *,
        class_name: str,
        queue_name: str,
        priority: int,
        enqueued_at: datetime,
        class_queue_name: str | None = None,
        class_priority: int | None = None,
        seal: Callable[[str], str] | None = None,
    ) -> None:
        cls, queue = _json_str(class_name), _json_str(queue_name)
        self._seal = seal  # set: the argument list is stored encrypted (quebec.encryption)
        inner_queue = queue if class_queue_name is None else _json_str(class_queue_name)
        inner_priority = priority if class_priority is None else class_priority
        self.class_name = class_name
        self._head = f',"continuation":{{}},"job_class":{cls},"job_id":'
        self._mid = (
            f',"priority":{int(inner_priority)},"queue_name":{inner_queue},"resumptions":0}},'
            f'"enqueued_at":{_dumps_str(format_naive_utc(enqueued_at))},"exception_executions":{{}},'
            f'"executions":0,"job_class":{cls},"job_id":'
        )
        self._mid2 = f',"locale":"en","priority":{int(priority)},"provider_job_id":'
        self._tail = f',"queue_name":{queue},"scheduled_at":null,"timezone":"UTC"}}'

    def render(self, active_job_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        """The envelope text; SerializationError names the argument that cannot be stored."""
        if kwargs or (args and isinstance(args[-1], dict)):
            refuse_reserved(self.class_name, args, kwargs)
        arguments = [*args, {**kwargs, KWARGS_TAG: True}] if kwargs else list(args)
        try:
            encoded = _encode_args(arguments)
            if "{" in encoded:  # else there is no dict, hence no key, to check
                check_keys(arguments)
            if not encoded.isascii():
                encoded.encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise explain(self.class_name, args, kwargs, exc) from None
        check_depth(self.class_name, args, kwargs, encoded)
        if self._seal is not None:
            encoded = f'[{{"{ENCRYPTED_TAG}":{_dumps_str(self._seal(encoded))}}}]'
        # ids are lowercase alphanumerics (ours and the wheel's): nothing to escape
        jid = f'"{active_job_id}"' if active_job_id.isalnum() else _dumps_str(active_job_id)
        return f'{{"arguments":{{"arguments":{encoded}{self._head}{jid}{self._mid}{jid}{self._mid2}{jid}{self._tail}'
