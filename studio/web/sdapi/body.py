"""A POST body at the A1111 door, read with bounds: its size (checked from Content-Length, then chunk
by chunk as it streams, never held whole past the cap) and its JSON's nesting (measured before the
parser recurses). A refusal is a BodyError carrying the response to send."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from .pictures import MAX_PICTURE_CHARS

# A POST body, refused past this before it is read whole: five pictures of the largest the door takes
# (MAX_PICTURE_CHARS, 16 MiB each as base64: 3 ControlNet units + init image + mask of 4096 px
# PNGs) and 1 MiB for the rest of the JSON. About 108 MiB.
MAX_BODY_BYTES = 5 * MAX_PICTURE_CHARS + 2**20
MAX_DEPTH = 32  # JSON nesting: A1111's deepest (override_settings, a ControlNet unit's mask) is 5


def _a1111_error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "body": "", "errors": detail}, status_code=status)


class BodyError(Exception):
    """A POST body refused before it is used (its size, its JSON, its depth): the response to send."""

    def __init__(self, response: JSONResponse):
        super().__init__(response.status_code)
        self.response = response


async def read_body(request: Request, cap: int | None = None) -> Any:
    """A POST body's JSON, read chunk by chunk and refused (413) as soon as it passes `cap`, never
    held whole past it; then refused (422) when it is not JSON or nested deeper than MAX_DEPTH."""
    cap = MAX_BODY_BYTES if cap is None else cap
    too_large = BodyError(_a1111_error(413, "PayloadTooLarge", f"The request body is over {cap} bytes: at most "
                                      f"{cap} ({cap / 2**20:.0f} MiB; five pictures of 16 MiB as base64)"))
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > cap:
        raise too_large
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > cap:
            raise too_large
    if len(raw) > 2**16:  # a large body is parsed off the event loop: other callers' polls go on
        return await run_in_threadpool(parse_json, raw)
    return parse_json(raw)


def parse_json(raw: bytes | bytearray) -> Any:
    """A body's JSON ({} when empty), its nesting bounded before the parser recurses: a bracket count
    is cheap (bytes.count), and only a body with more brackets than MAX_DEPTH is measured."""
    if not raw.strip():
        return {}
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and json_depth(raw) > MAX_DEPTH:
        raise BodyError(_json_refused(f"nested deeper than {MAX_DEPTH} levels"))
    try:
        return json.loads(raw)
    except RecursionError:
        raise BodyError(_json_refused(f"nested deeper than {MAX_DEPTH} levels")) from None
    except ValueError as exc:
        raise BodyError(_json_refused(f"invalid JSON: {exc}")) from None


def _json_refused(msg: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": ["body", 0], "msg": msg, "type": "value_error.jsondecode"}]},
                        status_code=422)


STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, its escapes included
NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def json_depth(raw: bytes | bytearray, limit: int = MAX_DEPTH) -> int:
    """How deep a JSON text's arrays and objects nest (brackets inside strings do not count), counted
    without parsing: the strings cut out, then the brackets' running depth summed 1 MiB at a time
    (numpy), stopping past `limit`."""
    import numpy as np

    brackets = np.frombuffer(NOT_BRACKET.sub(b"", STRING.sub(b"", bytes(raw))), dtype=np.uint8)
    depth = deepest = 0
    for start in range(0, len(brackets), 2**20):
        part = brackets[start:start + 2**20]
        running = np.cumsum(np.where((part == ord("[")) | (part == ord("{")), 1, -1), dtype=np.int64) + depth
        deepest, depth = max(deepest, int(running.max())), int(running[-1])
        if deepest > limit:
            break
    return deepest
