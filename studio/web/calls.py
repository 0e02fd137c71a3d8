"""The page's and `/generate`'s side of a Generate: the service layer (studio/service/) plans and
executes; this turns its StudioErrors into Gradio's messages and names the caller from Gradio's request.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, Iterator, Mapping, Sequence

import gradio as gr

from ..errors import StudioError
from ..fields import TABLE, FieldTable
from ..service import RunView, Service

log = logging.getLogger("studio")


def as_gradio_error(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def reported(fn: Callable) -> Callable:
    """An event handler whose every failure reaches the caller as a message: the studio's own errors
    as they are, anything else named by its type (and logged with its traceback). Gradio would
    answer those with a null error."""
    def message(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error) and str(exc.message or "").strip():
            return exc
        if isinstance(exc, StudioError) and str(exc).strip():
            return as_gradio_error(exc)
        name = getattr(fn, "__name__", "a handler")
        log.exception("%s failed", name)  # a message-less gr.Error too: Gradio would answer a null error
        return gr.Error(f"{name}: {type(exc).__name__}: {str(exc)[:200] or 'failed'}", print_exception=False)

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wait(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                raise message(exc) from None
        return wait

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise message(exc) from None
        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise message(exc) from None
    return call


def session_of(request: gr.Request | None, fallback: object) -> str:
    """The caller's session id (a browser tab or a gradio_client Client)."""
    session = getattr(request, "session_hash", None)
    return session if session else f"anonymous-{id(fallback)}"


def click(service: Service, key: str, settings: Mapping[str, Any], history: Sequence[str] = (),
          progress: Callable[..., None] | None = None, table: FieldTable = TABLE) -> Iterator[RunView]:
    """A Generate from the page or `/generate`: planned, then executed for `key`, its refusals and
    failures as Gradio shows them."""
    try:
        plan = service.plan(settings, table)
        yield from service.execute(key, plan, history, progress)
    except StudioError as exc:
        raise as_gradio_error(exc) from None
