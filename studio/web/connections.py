"""A tab's connections to the studio, kept to what Stop needs to get through.

A browser opens at most six HTTP/1.1 connections to one host, all its tabs together (a studio on
plain http://, as a local one is; HTTPS share links and Spaces speak HTTP/2, which has no such
limit). Gradio held two per tab: its heartbeat, which it opens whenever a page has a gr.State, and
the event stream while the tab has an event pending. Measured with four tabs generating in one
Chromium: six connections open, the fourth tab showed no queue position and its Stop answered only
after a minute, when a run had finished ("Nothing to stop"), and its request then ran.

So the page asks for no heartbeat (its only use here would be to drop a closed tab's gr.State values
at once: they are a few paths, and Gradio's session store drops the oldest past its capacity). A tab
then holds one long connection while its own Generate is pending and none otherwise. What must get
through while six tabs' pending Generates hold every connection goes over WebSockets, which browsers
count apart from the six: the page's Stop (`STOP_PATH`: one message, one answer) and a waiting tab's
place in the queue (`QUEUE_PATH`: said whenever it changes until the request starts). Both name the
visitor as the Gradio events do (session id and tab key, both needed) and answer with the status
line's text. (Measured before: with six tabs waiting, a queue position asked by a plain request
every second never arrived.)
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable

import gradio as gr
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

# Event arguments for what must answer at once whatever the queue holds: a plain request, no stream.
QUICK: dict[str, Any] = {"queue": False, "show_progress": "hidden"}


def without_heartbeat(demo: gr.Blocks) -> gr.Blocks:
    """The page's config, every time Gradio builds it, with the heartbeat off."""
    build = demo.get_config_file

    def config(*args: Any, **kwargs: Any) -> Any:
        built = build(*args, **kwargs)
        built["connect_heartbeat"] = False
        return built

    demo.get_config_file = config  # type: ignore[method-assign]
    return demo


STOP_PATH = "/studio/stop"
QUEUE_PATH = "/studio/queue"
MAX_MESSAGE = 1000  # characters: a session id and a tab key
STOP_WAIT_S = 10.0  # for the message after the socket opens, and for the answer in the page
QUEUE_TICK_S = 1.0  # how often a waiting tab's place is looked at (and said when it changed)
JOIN_WAIT_S = 10.0  # a queue socket whose visitor has no request waiting by then closes (it ran at once)
NO_VISITOR = "Stop: this page sent no session; reload it and try again."

# The page's side of both sockets (in the page's head): `studioSocket` opens one next to the page
# (whatever path the studio is served under), sends the visitor, hands each `{"status": text}` it
# receives to `onStatus` and resolves with the last one when the socket closes (or `fallback` after
# `waitMs`); `studioStatus` shows a text in the status line at once (an event's output would wait
# for Gradio's own bookkeeping, and a script event's output flashes Gradio's "Error" badge); the
# next status update replaces it.
SOCKET_HEAD = """<script>
window.studioSocket = (path, message, onStatus, waitMs, fallback) => new Promise((resolve) => {
  const page = window.location.href.split(/[?#]/)[0];
  const url = new URL(path, page.endsWith("/") ? page : page.replace(/[^/]*$/, ""));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  let done = false, last = fallback;
  const socket = new WebSocket(url);
  const finish = (text) => { if (!done) { done = true; try { socket.close(); } catch (e) {} resolve(text); } };
  socket.onopen = () => socket.send(JSON.stringify(message));
  socket.onmessage = (e) => {
    try { last = JSON.parse(e.data).status; } catch (err) { return; }
    if (onStatus && !done) onStatus(last);
  };
  socket.onclose = () => finish(last);
  socket.onerror = () => finish(last);
  if (waitMs) setTimeout(() => finish(last), waitMs);
});
window.studioStatus = (text) => {
  const line = document.querySelector("#status .md") || document.querySelector("#status");
  if (line && text) { const p = document.createElement("p"); p.textContent = text; line.replaceChildren(p); }
};
</script>"""

# The Stop button: the tab key and session id to STOP_PATH, the answer in the status line.
STOP_JS = f"""async (key, session) => {{
  const text = await window.studioSocket("{STOP_PATH.lstrip("/")}", {{session: session || "", key: key || ""}},
    null, {int(STOP_WAIT_S * 1000)}, "Stop could not reach the studio (or it has not answered yet): try again.");
  window.studioStatus(text);
  return text;
}}"""
# On Generate: the tab's place in the queue, said in the status line while its request waits
# ("Waiting: 2 ahead, about 40 s"). Not awaited: the click's other events go on at once.
QUEUE_JS = f"""(key, session) => {{
  window.studioSocket("{QUEUE_PATH.lstrip("/")}", {{session: session || "", key: key || ""}},
    (text) => window.studioStatus(text));
}}"""


async def _visitor_of(socket: WebSocket) -> tuple[str | None, str] | None:
    """The socket accepted and its one message read: (session, key); None when it closed or stayed silent."""
    await socket.accept()
    try:
        text = await asyncio.wait_for(socket.receive_text(), STOP_WAIT_S)
    except (WebSocketDisconnect, asyncio.TimeoutError, KeyError):  # gone, silent, or bytes
        await _close(socket)
        return None
    return _visitor(text)


def stop_route(stop: Callable[[str, str], Awaitable[str]]) -> WebSocketRoute:
    """The page's Stop: one message `{"session": ..., "key": ...}` in, `{"status": text}` out."""

    async def endpoint(socket: WebSocket) -> None:
        visitor = await _visitor_of(socket)
        if visitor is None:
            return
        session, key = visitor
        try:
            await socket.send_json({"status": NO_VISITOR if session is None else await stop(session, key)})
        except WebSocketDisconnect:
            return
        await _close(socket)

    return WebSocketRoute(STOP_PATH, endpoint)


def queue_route(line: Callable[[str, str], str | None]) -> WebSocketRoute:
    """A waiting tab's place: one message `{"session": ..., "key": ...}` in, then `{"status": text}`
    whenever `line(session, key)` (None: nothing of the visitor's waits) says something new, looked
    at every QUEUE_TICK_S; closed once the visitor's request has left the queue (it started, or Stop
    removed it), or when none came within JOIN_WAIT_S, or when the page goes."""

    async def endpoint(socket: WebSocket) -> None:
        visitor = await _visitor_of(socket)
        if visitor is None:
            return
        session, key = visitor
        seen, said, start = False, None, time.monotonic()
        while session is not None:
            text = line(session, key)
            if text is None and (seen or time.monotonic() - start > JOIN_WAIT_S):
                break
            try:
                if text is not None and text != said:
                    await socket.send_json({"status": text})
                seen, said = seen or text is not None, text if text is not None else said
                message = await asyncio.wait_for(socket.receive(), QUEUE_TICK_S)
            except asyncio.TimeoutError:  # the tick: nothing from the page, as expected
                continue
            except (WebSocketDisconnect, RuntimeError):
                return
            if message.get("type") == "websocket.disconnect":
                return
        await _close(socket)

    return WebSocketRoute(QUEUE_PATH, endpoint)


def _visitor(text: str) -> tuple[str | None, str]:
    """(session id, tab key) from Stop's message; session None when it names no visitor."""
    try:
        message = json.loads(text) if len(text) <= MAX_MESSAGE else None
    except ValueError:
        message = None
    session = message.get("session") if isinstance(message, dict) else None
    key = message.get("key") if isinstance(message, dict) else None
    if not isinstance(session, str) or not session or not isinstance(key, str):
        return None, ""
    return session, key


async def _close(socket: WebSocket) -> None:
    try:
        await socket.close()
    except RuntimeError:  # already closed by the other side
        pass


def session_id(request: gr.Request) -> str:
    """The tab's Gradio session id, for the Stop script (it is in the tab's URLs anyway)."""
    return getattr(request, "session_hash", None) or ""
