"""Continuable jobs: steps that are skipped once done and a cursor that survives a restart.

    class ImportJob(quebec.BaseClass, quebec.Continuable):
        def perform(self, import_id):
            with self.step("initialize") as step:
                if not step.skip:
                    initialize(import_id)
            with self.step("process", start=0) as step:
                for i in range(step.cursor, total(import_id)):
                    process(import_id, i)
                    step.advance(from_=i)   # saves the cursor; raises JobInterrupted on shutdown
            self.step("finalize", lambda: finalize(import_id))

When the worker shuts down gracefully, the next `checkpoint()` (which `set()` and `advance()`
call, and which runs between steps) raises JobInterrupted: the executor enqueues the job again
(same active_job_id) carrying its progress in the envelope's top-level `continuation`
(`{"completed": [names], "current": [name, cursor] | null}`) and `resumptions`, where the Rust
wheel keeps them, and the next execution skips the completed steps and resumes the current one
from its cursor. A `with` body cannot be skipped by Python, so a completed step's body still runs
with `step.skip` True; the callback form does not call its callback then. The wheel does the same.

This module holds the state of one execution (`Continuation`) and the user-facing classes; the
executor (engine/resumption.py) reads the envelope into it and turns an interruption into the
next run. Nothing here touches the database.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

_PLAIN_CURSOR = (int, str, type(None))


class InvalidStepError(Exception):
    """A step used in a way that cannot be resumed: repeated, nested, or out of the order the
    job's saved progress expects."""


class JobInterrupted(Exception):  # noqa: N818 - the wheel's name
    """Raised by a checkpoint when the worker is shutting down (or before an isolated step):
    the job is enqueued again with its progress. Let it propagate out of perform."""


def _never() -> bool:
    return False


class StepContext:
    """One step of one execution: its cursor and what happened to it so far."""

    __slots__ = ("_advanced", "_continuation", "_cursor", "_ended", "_name", "_resumed", "_skip")

    def __init__(self, continuation: Continuation, name: str, cursor: Any, *, resumed: bool, skip: bool) -> None:
        self._continuation = continuation
        self._name = name
        self._cursor = cursor
        self._resumed = resumed
        self._skip = skip
        self._advanced = False
        self._ended = False

    @property
    def cursor(self) -> Any:
        """The cursor: the saved one when resumed, else `start` (None for a skipped step)."""
        return self._cursor

    @property
    def resumed(self) -> bool:
        """True when this step was interrupted before and continues from its saved cursor."""
        return self._resumed

    @property
    def advanced(self) -> bool:
        """True once set() or advance() moved the cursor in this execution."""
        return self._advanced

    @property
    def skip(self) -> bool:
        """True when the step was completed by an earlier execution: do not do its work again."""
        return self._skip

    @property
    def name(self) -> str:
        return self._name

    def set(self, value: Any) -> None:
        """Set the cursor to `value` (JSON: int, str, list, dict…), then checkpoint()."""
        self._movable("set")
        _check_cursor(self._name, value)
        self._cursor = value
        self._advanced = True
        self._continuation.advanced = True
        self.checkpoint()

    def advance(self, from_: Any = None) -> None:
        """Move the cursor one past `from_` (default: the cursor): an int + 1, a str's last
        character + 1, None → 1; then checkpoint()."""
        self._movable("advance")
        self.set(_successor(self._name, self._cursor if from_ is None else from_))

    def checkpoint(self) -> None:
        """Raise JobInterrupted if the worker is shutting down; otherwise nothing."""
        if self._continuation.interrupting():
            raise JobInterrupted(
                f"step {self._name!r} of {self._continuation.job_label} was interrupted at cursor "
                f"{self._cursor!r}: the worker is shutting down; the job resumes from there"
            )

    def _movable(self, what: str) -> None:
        if self._skip:
            raise InvalidStepError(
                f"Step {self._name!r} was completed by an earlier execution, so {what}() cannot move its cursor; "
                f"put the step's work under `if not step.skip:`"
            )
        if self._ended:
            raise InvalidStepError(
                f"Step {self._name!r} has ended, so {what}() cannot move its cursor; call it inside the step"
            )

    def __repr__(self) -> str:
        return f"StepContext(step={self._name!r}, cursor={self._cursor!r}, skip={self._skip})"


class StepContextManager:
    """What `self.step(name)` returns: `with` (or `async with`) it to get the StepContext."""

    __slots__ = ("_context", "_continuation", "_isolated", "_name", "_start")

    def __init__(self, continuation: Continuation, name: str, start: Any, isolated: bool) -> None:
        self._continuation = continuation
        self._name = name
        self._start = start
        self._isolated = isolated
        self._context: StepContext | None = None

    def __enter__(self) -> StepContext:
        if self._context is not None:
            raise InvalidStepError(f"Step {self._name!r} was entered twice; call self.step() once per step")
        self._context = self._continuation.enter(self._name, self._start, self._isolated)
        return self._context

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._context is not None:
            self._continuation.leave(self._context, failed=exc_type is not None)

    async def __aenter__(self) -> StepContext:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)


class Continuation:
    """The progress of one continuable job in one execution: steps completed (before and
    now), the step running, whether anything advanced, how many resumptions came before."""

    __slots__ = (
        "_encountered",
        "_isolating",
        "_open",
        "_saved_current",
        "advanced",
        "completed",
        "interrupting",
        "job_label",
        "resumable",
        "resumptions",
    )

    def __init__(
        self,
        completed: list[str] | None = None,
        current: tuple[str, Any] | None = None,
        resumptions: int = 0,
        interrupting: Callable[[], bool] = _never,
        job_label: str = "this job",
        resumable: bool = True,
    ) -> None:
        self.completed: list[str] = list(completed or [])
        self._saved_current = current
        self.resumptions = resumptions
        self.interrupting = interrupting
        self.job_label = job_label
        self.resumable = resumable  # False: perform called directly; nobody would resume an isolated step
        self.advanced = False  # a step completed or a cursor moved in this execution
        self._encountered: list[str] = []
        self._open: StepContext | None = None  # entered, not yet left
        self._isolating = False  # the last step run here was isolated: the next one runs apart

    @classmethod
    def from_envelope(
        cls, raw: Mapping[str, Any], interrupting: Callable[[], bool] = _never, job_label: str = "this job"
    ) -> Continuation:
        """The progress stored at the envelope's top level (`continuation`, `resumptions`), as
        the wheel and Quebec write it when they enqueue an interrupted job again."""
        state = raw.get("continuation")
        completed: list[str] = []
        current: tuple[str, Any] | None = None
        if isinstance(state, Mapping):
            found = state.get("completed")
            if isinstance(found, list):
                completed = [str(name) for name in found]
            saved = state.get("current")
            if isinstance(saved, list) and len(saved) == 2 and isinstance(saved[0], str):
                current = (saved[0], saved[1])
        count = raw.get("resumptions")
        resumptions = count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0
        return cls(completed, current, resumptions, interrupting, job_label)

    def state(self) -> dict[str, Any]:
        """What the next execution resumes from, as the envelope's `continuation`."""
        current: list[Any] | None = None
        if self._open is not None and not self._open.skip:
            current = [self._open.name, self._open.cursor]
        elif self._saved_current is not None and self._saved_current[0] not in self._encountered:
            current = list(self._saved_current)  # interrupted before it got there again
        return {"completed": list(self.completed), "current": current}

    def step(self, name: str, callback: Callable[..., Any] | None, start: Any, isolated: bool) -> Any:
        if not isinstance(name, str):
            raise TypeError(f"a step name must be a str, got {name!r} ({type(name).__name__}); pass e.g. 'process'")
        _check_cursor(name, start)
        if callback is None:
            return StepContextManager(self, name, start, isolated)
        if not callable(callback):
            raise TypeError(
                f"the callback of step {name!r} must be callable, got {callback!r}; pass a function, "
                f"or leave it out and use `with self.step({name!r}) as step:`"
            )
        context = self.enter(name, start, isolated)
        if context.skip:
            self.leave(context, failed=False)
            return None
        try:
            result = _call(callback, context)
        except BaseException:
            self.leave(context, failed=True)
            raise
        if inspect.isawaitable(result):
            return self._finish_later(context, result)  # an async callback: `await self.step(...)`
        self.leave(context, failed=False)
        return None

    async def _finish_later(self, context: StepContext, pending: Awaitable[Any]) -> None:
        try:
            await pending
        except BaseException:
            self.leave(context, failed=True)
            raise
        self.leave(context, failed=False)

    def enter(self, name: str, start: Any, isolated: bool) -> StepContext:
        self._validate(name)
        if len(self._encountered) < len(self.completed):
            self._encountered.append(name)
            context = StepContext(self, name, None, resumed=False, skip=True)
            self._open = context
            return context
        if self.interrupting():
            raise JobInterrupted(f"{self.job_label} was interrupted before step {name!r}: the worker is shutting down")
        if self.resumable and (isolated or self._isolating) and self.advanced:
            raise JobInterrupted(
                f"{self.job_label} stops before step {name!r} so that it runs in an execution of its own"
            )
        self._encountered.append(name)  # only now: interrupted before it, a saved cursor stays saved
        saved = self._saved_current
        resumed = saved is not None and saved[0] == name
        context = StepContext(
            self, name, saved[1] if saved is not None and resumed else start, resumed=resumed, skip=False
        )
        self._open = context
        self._isolating = isolated
        return context

    def leave(self, context: StepContext, *, failed: bool) -> None:
        context._ended = True
        if failed:
            return  # stays open: state() saves it as the current step with its cursor
        self._open = None
        if not context.skip:
            self.completed.append(context.name)
            self.advanced = True

    def _validate(self, name: str) -> None:
        if not name:
            raise InvalidStepError("a step name must not be empty; give the step a name such as 'process'")
        running = self._open
        if running is not None and not running._ended:
            raise InvalidStepError(
                f"Step {name!r} is nested inside step {running.name!r}; end step {running.name!r} before the next "
                f"step starts"
            )
        if name in self._encountered:
            raise InvalidStepError(f"Step {name!r} has already been encountered; give each step of a job its own name")
        position = len(self._encountered)
        if position < len(self.completed) and self.completed[position] != name:
            raise InvalidStepError(
                f"Step {name!r} found, expected to see {self.completed[position]!r}; keep the steps of a job in "
                f"the same order while jobs that ran them are still queued"
            )
        saved = self._saved_current
        if position >= len(self.completed) and saved is not None and saved[0] not in self._encountered + [name]:
            raise InvalidStepError(
                f"Step {name!r} found, expected to resume from {saved[0]!r}; keep the steps of a job in the same "
                f"order while jobs that ran them are still queued"
            )


class Continuable:
    """Mixin for jobs made of resumable steps: `class J(quebec.BaseClass, quebec.Continuable)`.

    `max_resumptions` bounds how often an error may resume the job (None: no bound);
    `resume_errors_after_advancing` (default True) enqueues a job that raised after it made
    progress in this execution again, to resume, instead of failing it.
    """

    max_resumptions: ClassVar[int | None] = None
    resume_errors_after_advancing: ClassVar[bool] = True
    _continuation: Continuation | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        limit = cls.max_resumptions
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise TypeError(
                f"{cls.__qualname__}.max_resumptions must be None (no bound) or a whole number >= 0, got {limit!r}; "
                f"set e.g. max_resumptions = 10"
            )
        if not isinstance(cls.resume_errors_after_advancing, bool):
            raise TypeError(
                f"{cls.__qualname__}.resume_errors_after_advancing must be True or False, got "
                f"{cls.resume_errors_after_advancing!r}"
            )

    def step(
        self, name: str, callback: Callable[..., Any] | None = None, *, start: Any = None, isolated: bool = False
    ) -> Any:
        """A resumable step: `with self.step(name, start=0) as step:` (the StepContext), or
        `self.step(name, callback)`, which calls `callback()` or `callback(step)` unless the
        step was completed before (returns None; `await` it when the callback is async).
        `isolated=True` runs the step in an execution of its own."""
        continuation = vars(self).get("_continuation")
        if continuation is None:  # perform called directly, outside a worker
            continuation = Continuation(job_label=type(self).__qualname__, resumable=False)
            vars(self)["_continuation"] = continuation
        return continuation.step(name, callback, start, bool(isolated))

    @property
    def resumptions(self) -> int:
        """How many times this job was resumed after an interruption or an error."""
        continuation = vars(self).get("_continuation")
        return 0 if continuation is None else continuation.resumptions


def _check_cursor(step: str, value: Any) -> None:
    """A cursor is stored in the envelope as JSON both sides can read: refuse anything else now,
    not when an interrupted job is enqueued again."""
    if type(value) in _PLAIN_CURSOR:
        return
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the cursor of step {step!r} must be plain JSON (int, str, float, bool, None, list, dict with str "
            f"keys), got {value!r} ({exc}); pass an id or an ISO string instead"
        ) from None


def _call(callback: Callable[..., Any], context: StepContext) -> Any:
    """callback(step) when it takes a positional argument, else callback()."""
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return callback(context)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind in positional or p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return callback(context)
    return callback()


def _successor(step: str, value: Any) -> Any:
    if value is None:
        return 1
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1
    if isinstance(value, str) and value:
        return value[:-1] + chr(ord(value[-1]) + 1)
    raise TypeError(
        f"advance() cannot move the cursor of step {step!r} past {value!r} ({type(value).__name__}): only int and "
        f"non-empty str cursors have a successor; pass from_=<an int or str>, or call step.set(next_value)"
    )
