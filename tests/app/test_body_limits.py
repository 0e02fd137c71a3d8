"""The running app, as others reach it (--host 0.0.0.0): oversized bodies are refused before they are
read (studio/web/limits.py), and nothing of them is written to Gradio's upload folder."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlparse

import pytest
from support import running_app

from studio.web import limits

MB = 2**20


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    uploads = tmp_path_factory.mktemp("gradio_tmp")
    with running_app(tmp_path_factory, "--host", "0.0.0.0", env={"GRADIO_TEMP_DIR": str(uploads)}) as app:
        yield app, uploads


def connection(app) -> http.client.HTTPConnection:
    url = urlparse(app.url)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=30)


def files_in(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def declared_only(app, path: str, length: int, content_type: str) -> tuple[int, str, float]:
    """Send only the headers of a `length`-byte body; the answer, its text and how long it took."""
    conn = connection(app)
    start = time.monotonic()
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", content_type)
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    reply = conn.getresponse()
    text = reply.read().decode()
    conn.close()
    return reply.status, text, time.monotonic() - start


def multipart_part(n: int) -> bytes:
    """One 1 MB file of a multipart body (boundary "x"), under Gradio's own per-file cap."""
    return (b'--x\r\nContent-Disposition: form-data; name="files"; filename="f%d.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" % n) + b"x" * MB + b"\r\n"


def streamed(app, path: str, total: int, content_type: str) -> tuple[int, str]:
    """Send a chunked body (no Content-Length) of up to `total` bytes, stopping when the app cuts it off:
    1 MB files for a multipart body, else 1 MB of text at a time."""
    conn = connection(app)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", content_type)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    sent = 0
    try:
        while sent < total:
            chunk = multipart_part(sent // MB) if content_type.startswith("multipart") else b"x" * MB
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += MB
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    reply = conn.getresponse()
    text = reply.read().decode()
    conn.close()
    return reply.status, text


def test_oversized_upload_is_refused_at_once_and_nothing_written(shared_app):
    app, uploads = shared_app
    before = files_in(uploads)
    status, text, took = declared_only(app, "/gradio_api/upload", 900 * MB, "multipart/form-data; boundary=x")
    assert status == 413, text
    assert f"at most {limits.UPLOAD_BODY_BYTES} bytes" in text
    assert took < 5
    assert files_in(uploads) == before


def test_oversized_queue_join_is_refused(shared_app):
    app, _ = shared_app
    status, text, took = declared_only(app, "/gradio_api/queue/join", 100 * MB, "application/json")
    assert status == 413 and f"at most {limits.JSON_BODY_BYTES} bytes" in text
    assert took < 5


def test_oversized_body_elsewhere_is_refused(shared_app):
    app, _ = shared_app
    status, text, _ = declared_only(app, "/gradio_api/no_such_route", 12 * 45 * MB, "multipart/form-data; boundary=x")
    assert status == 413 and f"at most {limits.SMALL_BODY_BYTES} bytes" in text


def test_a_json_body_of_millions_of_tiny_items_is_refused_before_it_is_parsed(shared_app):
    """8 MB of `[{},{},...]` (under the byte cap) would parse into ~2.8 million dicts."""
    app, _ = shared_app
    for path in ("/gradio_api/queue/join", "/gradio_api/run/generate"):  # (/sdapi: 403 before any read here)
        body = b"[" + b"{}," * (8 * MB // 3) + b"{}]"
        conn = connection(app)
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and stopped reading
        reply = conn.getresponse()
        text = reply.read().decode()
        conn.close()
        assert reply.status == 413 and f"at most {limits.JSON_ITEMS}" in text and path in text, (path, text)


def test_chunked_bodies_are_cut_off_as_they_stream(shared_app):
    app, uploads = shared_app
    before = files_in(uploads)
    status, text = streamed(app, "/gradio_api/queue/join", 100 * MB, "application/json")
    assert status == 413 and f"at most {limits.JSON_BODY_BYTES} bytes" in text
    status, text = streamed(app, "/gradio_api/upload", 200 * MB, "multipart/form-data; boundary=x")
    assert status in (413, 429), text
    assert files_in(uploads) == before


def test_an_ordinary_upload_still_works(shared_app):
    app, uploads = shared_app
    conn = connection(app)
    body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n")
    conn.request("POST", "/gradio_api/upload", body=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    reply = conn.getresponse()
    assert reply.status == 200, reply.read()
    assert "a.txt" in reply.read().decode()
    conn.close()
