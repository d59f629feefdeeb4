"""Who may see and who may act: credentials, roles, the CSRF check and the bind check.

Roles: a viewer reads; an operator also acts. Where a request's role comes from, first match:
1. an `auth` callable given to asgi_app()/ControlPlaneASGI: `auth(request)` returns
   "operator", "viewer" or None (refused, 401);
2. credentials from the environment: QUEBEC_CONTROL_PLANE_USER/_PASSWORD (HTTP basic, operator),
   QUEBEC_CONTROL_PLANE_VIEWER_USER/_VIEWER_PASSWORD (basic, viewer), QUEBEC_CONTROL_PLANE_TOKEN
   (`Authorization: Bearer …`, operator), each compared in constant time;
3. none set: requests from this machine (loopback) are operators, any other is refused.
The read-only switch (read_only=True or QUEBEC_CONTROL_PLANE_READ_ONLY=1) makes everyone a viewer.

Every action is a POST that must pass both CSRF checks: the browser says the request is
same-origin (Sec-Fetch-Site, or else Origin equal to the Host), and the form carries a token
signed with this server's secret (QUEBEC_CONTROL_PLANE_SECRET, else random per process) for
the same user. Basic-auth credentials are ambient, so the origin check alone is not enough,
and a token alone could leak through a page; both are required.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from quebec.errors import ConfigError

TOKEN_LIFETIME = 12 * 3600.0
_TRUE = ("1", "true", "yes", "on")


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


AuthCallable = Callable[[Any], Any]  # request -> "operator" | "viewer" | None


@dataclass(frozen=True, slots=True)
class Visitor:
    role: Role
    user: str  # who, for the CSRF token ("" when anonymous on loopback)

    @property
    def may_act(self) -> bool:
        return self.role is Role.OPERATOR


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 401: say who you are; 403: not allowed from here
    sentence: str


@dataclass(frozen=True)
class Access:
    operator: tuple[str, str] | None = None
    viewer: tuple[str, str] | None = None
    token: str | None = None
    read_only: bool = False
    auth: AuthCallable | None = None
    secret: bytes = b""

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        auth: AuthCallable | None = None,
        read_only: bool | None = None,
        secret: str | bytes | None = None,
    ) -> Access:
        env = os.environ if environ is None else environ
        if auth is not None and not callable(auth):
            raise ConfigError(f"auth= takes a callable auth(request) -> 'operator' | 'viewer' | None, got {auth!r}")
        given = secret if secret is not None else env.get("QUEBEC_CONTROL_PLANE_SECRET") or None
        key = given.encode() if isinstance(given, str) else given
        if key is not None and len(key) < 16:
            raise ConfigError("QUEBEC_CONTROL_PLANE_SECRET must be at least 16 characters; use a long random string")
        return cls(
            operator=_pair(env, "QUEBEC_CONTROL_PLANE_USER", "QUEBEC_CONTROL_PLANE_PASSWORD"),
            viewer=_pair(env, "QUEBEC_CONTROL_PLANE_VIEWER_USER", "QUEBEC_CONTROL_PLANE_VIEWER_PASSWORD"),
            token=env.get("QUEBEC_CONTROL_PLANE_TOKEN") or None,
            read_only=bool(read_only)
            if read_only is not None
            else env.get("QUEBEC_CONTROL_PLANE_READ_ONLY", "").strip().lower() in _TRUE,
            auth=auth,
            secret=key or secrets.token_bytes(32),
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self.operator or self.viewer or self.token or self.auth)

    def visitor(self, headers: Mapping[str, str], client_host: str | None, call_auth: Any = None) -> Visitor | Refusal:
        """The role of a request (headers lower-cased), or why it is refused."""
        found = self._identify(headers, client_host, call_auth)
        if isinstance(found, Visitor) and self.read_only:
            return Visitor(Role.VIEWER, found.user)
        return found

    def _identify(self, headers: Mapping[str, str], client_host: str | None, call_auth: Any) -> Visitor | Refusal:
        if self.auth is not None:
            answer = self.auth(call_auth)
            if answer is None or answer is False:
                return Refusal(401, "the auth callable refused this request")
            try:
                return Visitor(Role(str(answer)), "auth")
            except ValueError:
                raise ConfigError(
                    f"the dashboard's auth callable returned {answer!r}; return 'operator', 'viewer' or None"
                ) from None
        if self.operator or self.viewer or self.token:
            return self._credentials(headers.get("authorization", ""))
        if is_loopback(client_host):
            return Visitor(Role.OPERATOR, "")
        return Refusal(
            403,
            "this dashboard has no credentials set, so it answers only requests from this machine; "
            "set QUEBEC_CONTROL_PLANE_USER and QUEBEC_CONTROL_PLANE_PASSWORD",
        )

    def _credentials(self, authorization: str) -> Visitor | Refusal:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and self.token and _same(value.strip(), self.token):
            return Visitor(Role.OPERATOR, "token")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return Refusal(401, "the Authorization header is not valid basic credentials")
            # Both pairs are compared, whichever matches, so the time taken tells nothing.
            as_operator = self.operator is not None and _pair_matches(self.operator, user, password)
            as_viewer = self.viewer is not None and _pair_matches(self.viewer, user, password)
            if as_operator:
                return Visitor(Role.OPERATOR, user)
            if as_viewer:
                return Visitor(Role.VIEWER, user)
        return Refusal(401, "sign in: this dashboard needs a user name and password")

    # -- CSRF -----------------------------------------------------------------------------
    def csrf_token(self, visitor: Visitor, now: float | None = None) -> str:
        issued = str(int(time.time() if now is None else now))
        return f"{issued}.{self._sign(issued, visitor.user)}"

    def csrf_valid(self, token: str | None, visitor: Visitor, now: float | None = None) -> bool:
        if not token or "." not in token:
            return False
        issued, _, signature = token.partition(".")
        if not issued.isdigit():
            return False
        age = (time.time() if now is None else now) - int(issued)
        return 0 <= age <= TOKEN_LIFETIME and _same(signature, self._sign(issued, visitor.user))

    def _sign(self, issued: str, user: str) -> str:
        return hmac.new(self.secret, f"{issued}|{user}".encode(), hashlib.sha256).hexdigest()


def same_origin(headers: Mapping[str, str]) -> bool:
    """The browser says this request comes from our own pages (headers lower-cased)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin, host = headers.get("origin"), headers.get("host")
    return bool(origin and host) and origin in (f"http://{host}", f"https://{host}")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, access: Access) -> None:
    """Refuse to listen beyond this machine with no credentials, in one sentence."""
    if not is_loopback(host) and not access.has_credentials:
        raise ConfigError(
            f"refusing to serve the dashboard on {host} without credentials: anyone who can reach it could "
            f"retry and discard jobs; set QUEBEC_CONTROL_PLANE_USER and QUEBEC_CONTROL_PLANE_PASSWORD (or "
            f"QUEBEC_CONTROL_PLANE_TOKEN), or bind to 127.0.0.1"
        )


def _pair(env: Mapping[str, str], user_var: str, password_var: str) -> tuple[str, str] | None:
    user, password = env.get(user_var) or "", env.get(password_var) or ""
    if bool(user) != bool(password):
        missing = password_var if user else user_var
        raise ConfigError(f"{user_var} and {password_var} go together; set {missing} too (or unset both)")
    return (user, password) if user else None


def _pair_matches(pair: tuple[str, str], user: str, password: str) -> bool:
    return _same(user, pair[0]) & _same(password, pair[1])


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
