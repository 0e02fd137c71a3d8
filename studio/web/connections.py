"""A tab's connections to the studio, kept to what Stop needs to get through.

A browser opens at most six HTTP/1.1 connections to one host, all its tabs together (a studio on
plain http://, as a local one is; HTTPS share links and Spaces speak HTTP/2, which has no such
limit). Gradio held two per tab: its heartbeat, which it opens whenever a page has a gr.State, and
the event stream while the tab has an event pending. Measured with four tabs generating in one
Chromium: six connections open, the fourth tab showed no queue position and its Stop answered only
after a minute, when a run had finished ("Nothing to stop"), and its request then ran.

So the page asks for no heartbeat (its only use here would be to drop a closed tab's gr.State values
at once: they are a few paths, and Gradio's session store drops the oldest past its capacity), and
the queue position is not a queued event (`QUICK`): one short request answered directly. A tab then
holds one long connection while its own Generate is pending and none otherwise. Stop goes further:
the page's Stop is a WebSocket (`STOP_PATH`), which browsers count apart from the six, so it lands
even when six tabs' pending Generates hold every connection. It names the visitor as the Gradio
event did (session id and tab key, both needed), and answers with the status line's text.
"""

from __future__ import annotations

import asyncio
import json
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
MAX_MESSAGE = 1000  # characters: a session id and a tab key
STOP_WAIT_S = 10.0  # for the message after the socket opens, and for the answer in the page
NO_VISITOR = "Stop: this page sent no session; reload it and try again."

# The Stop button's script: the tab key and session id to STOP_PATH (next to the page, whatever
# path the studio is served under), the answer shown in the status line.
STOP_JS = f"""async (key, session) => {{
  const page = window.location.href.split(/[?#]/)[0];
  const url = new URL("{STOP_PATH.lstrip("/")}", page.endsWith("/") ? page : page.replace(/[^/]*$/, ""));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const text = await new Promise((resolve) => {{
    let done = false;
    const socket = new WebSocket(url);
    const finish = (text) => {{ if (!done) {{ done = true; try {{ socket.close(); }} catch (e) {{}} resolve(text); }} }};
    socket.onopen = () => socket.send(JSON.stringify({{session: session || "", key: key || ""}}));
    socket.onmessage = (e) => {{ try {{ finish(JSON.parse(e.data).status); }} catch (err) {{ finish("Stop: " + err); }} }};
    socket.onerror = () => finish("Stop could not reach the studio (its WebSocket was refused): try again.");
    setTimeout(() => finish("Stop sent; the studio has not answered yet."), {int(STOP_WAIT_S * 1000)});
  }});
  // Shown in the status line at once (an event's output would wait for Gradio's own bookkeeping, and
  // a script event's output flashes Gradio's "Error" badge); the next status update replaces it.
  const line = document.querySelector("#status .md") || document.querySelector("#status");
  if (line) {{ const p = document.createElement("p"); p.textContent = text; line.replaceChildren(p); }}
  return text;
}}"""


def stop_route(stop: Callable[[str, str], Awaitable[str]]) -> WebSocketRoute:
    """The page's Stop: one message `{"session": ..., "key": ...}` in, `{"status": text}` out."""

    async def endpoint(socket: WebSocket) -> None:
        await socket.accept()
        try:
            text = await asyncio.wait_for(socket.receive_text(), STOP_WAIT_S)
        except (WebSocketDisconnect, asyncio.TimeoutError, KeyError):  # gone, silent, or bytes
            await _close(socket)
            return
        session, key = _visitor(text)
        try:
            await socket.send_json({"status": NO_VISITOR if session is None else await stop(session, key)})
        except WebSocketDisconnect:
            return
        await _close(socket)

    return WebSocketRoute(STOP_PATH, endpoint)


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
