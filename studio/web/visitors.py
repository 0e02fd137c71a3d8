"""Who a request comes from: one answer for the body caps (limits.py), the queue share and the session
streams (queue_guard.py), the A1111 door's flags (sdapi/routes.py) and app.py.

A studio others can reach (a `--host` other than this machine, a `--share` link, a Space) counts its
visitors by address, because every other name a request carries (session id, tab key) is chosen by
the client. The address is the connection's peer, or the entry a proxy the studio knows added to
X-Forwarded-For: on a Space any peer's (only Hugging Face's proxy reaches the container); with
`--share` the tunnel's, which connects from this machine; else nobody's.

>>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("studio.example")
(True, True, False, False)
>>> forwarding(space=True, share=False), forwarding(space=False, share=True), forwarding(False, False)
('always', 'loopback', 'never')

Within one address (a NAT, a proxy the studio does not know) visitors are told apart by a cookie the
studio sets on a shared studio's first answer (`VISITOR_COOKIE`: random, HttpOnly, never in a URL):
a Gradio session first used with it is good only with it (sessions.SessionOwners). A browser that
refuses the cookie (third-party cookies blocked in a Space's frame) is told apart by address alone.

>>> visitor_cookie({"headers": [(b"cookie", b"a=1; studio-visitor=0123456789abcdef0123456789abcdef")]})
'0123456789abcdef0123456789abcdef'
>>> visitor_cookie({"headers": [(b"cookie", b"studio-visitor=short")]}), visitor_cookie({"headers": []})
('', '')
"""

from __future__ import annotations

import http.cookies
import ipaddress
import os
from typing import Any

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", ""})  # a `--host` only this machine reaches
# Whose X-Forwarded-For names the visitor: nobody's; the share tunnel's (it reaches the studio from this
# machine); or any peer's (a Space).
FORWARDED_NEVER, FORWARDED_FROM_LOOPBACK, FORWARDED_ALWAYS = "never", "loopback", "always"
MAX_ADDRESS_CHARS = 64  # an IPv6 address with a zone fits; a proxy's header is not trusted for more


def is_loopback(host: Any) -> bool:
    """True for a host name or address only this machine reaches."""
    if host is None or host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def forwarding(space: bool, share: bool) -> str:
    """Whose X-Forwarded-For to believe, for a studio on a Space and/or behind a share link."""
    return FORWARDED_ALWAYS if space else FORWARDED_FROM_LOOPBACK if share else FORWARDED_NEVER


def is_shared(host: Any, share: bool, space: bool) -> bool:
    """Can others reach a studio served on `host`? Then it runs as a shared one (see --allow-any-path)."""
    return space or share or not is_loopback(host)


def client_address(scope: dict, forwarded: str = FORWARDED_NEVER) -> str:
    """The address a request comes from (ASGI `scope`): the peer, or the last X-Forwarded-For entry where
    the peer is a proxy `forwarded` trusts (the entry that proxy added: those before it are the client's
    own words)."""
    peer = str((scope.get("client") or ("", 0))[0] or "")
    if forwarded == FORWARDED_NEVER or (forwarded == FORWARDED_FROM_LOOPBACK and not is_loopback(peer)):
        return peer
    for name, value in scope.get("headers") or ():
        if name == b"x-forwarded-for":
            entries = [entry.strip() for entry in value.decode("latin-1").split(",") if entry.strip()]
            if entries:
                return entries[-1][:MAX_ADDRESS_CHARS]
    return peer


VISITOR_COOKIE = "studio-visitor"
VISITOR_COOKIE_CHARS = 32  # hex of 16 random bytes


def visitor_cookie(scope: dict) -> str:
    """The request's visitor cookie; "" when absent or not one the studio could have made."""
    for name, value in scope.get("headers") or ():
        if name != b"cookie":
            continue
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(value.decode("latin-1"))
        except http.cookies.CookieError:
            continue
        morsel = jar.get(VISITOR_COOKIE)
        if morsel is not None and len(morsel.value) == VISITOR_COOKIE_CHARS:
            try:
                int(morsel.value, 16)
            except ValueError:
                continue
            return morsel.value
    return ""


def set_visitor_cookie(space: bool) -> tuple[bytes, bytes]:
    """A Set-Cookie header with a new visitor cookie. On a Space the page is in a frame of
    huggingface.co, where only a `SameSite=None; Secure` (partitioned) cookie is kept at all."""
    value = os.urandom(VISITOR_COOKIE_CHARS // 2).hex()
    where = "SameSite=None; Secure; Partitioned" if space else "SameSite=Lax"
    return b"set-cookie", f"{VISITOR_COOKIE}={value}; Path=/; HttpOnly; {where}".encode()
