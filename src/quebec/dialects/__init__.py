"""for_url(): the seed's URL forms → a SQLAlchemy URL and the Dialect that speaks it.

Accepted: `sqlite:///rel.db?mode=rwc`, `sqlite://rel.db?mode=rwc` (the seed's f-string
form), `sqlite:////abs/path.db`, `sqlite::memory:`, `postgres://` / `postgresql://…`,
`mysql://…` / `mariadb://…`, and SQLAlchemy URLs with an explicit driver.
"""

from __future__ import annotations

import importlib.util
import os
from urllib.parse import parse_qsl, quote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from quebec.config.rules import sslmode
from quebec.dialects.base import Dialect
from quebec.dialects.mysql import MySQLDialect
from quebec.dialects.postgresql import PostgreSQLDialect
from quebec.dialects.sqlite import SQLiteDialect
from quebec.errors import ConfigError, DriverMissing

__all__ = ["Dialect", "for_url", "redact"]

_SUPPORTED = "sqlite:///path.db, postgresql://user@host/db or mysql://user@host/db"


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable: show nothing that could be a secret
        return url.split("@")[-1] if "@" in url else url


# SQLite's own URI modes, honoured as SQLite defines them; no other parameter is read.
_SQLITE_MODES = ("rwc", "rw", "ro", "memory")


def _sqlite(url: str) -> tuple[URL, SQLiteDialect]:
    rest = url[len("sqlite:") :]
    path, _, query = rest.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if path in (":memory:", "//:memory:", "///:memory:", "////:memory:", "", "//"):
        database = ":memory:"
    elif path.startswith("////"):
        database = "/" + path[4:].lstrip("/")
    elif path.startswith("///"):
        database = path[3:]
    elif path.startswith("//"):
        database = path[2:]
    else:
        raise ConfigError(f"SQLite URL {url!r} is malformed; use sqlite:///relative.db or sqlite:////abs/path.db")
    mode = params.pop("mode", "rwc")
    cache = params.pop("cache", "private")
    if params:
        raise ConfigError(
            f"SQLite URL {url!r} has {', '.join(sorted(params))}=, which Quebec does not read; "
            f"the only parameters are mode= ({', '.join(_SQLITE_MODES)}) and cache="
        )
    if mode not in _SQLITE_MODES:
        raise ConfigError(f"SQLite URL {url!r} has mode={mode!r}; use one of {', '.join(_SQLITE_MODES)}")
    if cache not in ("shared", "private"):
        raise ConfigError(f"SQLite URL {url!r} has cache={cache!r}; use cache=shared or cache=private, or leave it out")
    if database == ":memory:" or mode == "memory":
        # mode=memory names no file: the database lives in this process and nothing is
        # written to disk (one connection shared by every thread, as for :memory:).
        sa_url = URL.create("sqlite+pysqlite", database=":memory:")
        return sa_url, SQLiteDialect(sa_url, path=None, read_only=False)
    if mode in ("rw", "ro") and not os.path.exists(database):
        raise ConfigError(
            f"SQLite database file {database!r} does not exist and the URL says mode={mode}; add ?mode=rwc to create it"
        )
    folder = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(folder):
        raise ConfigError(f"SQLite database folder {folder!r} does not exist; create it or fix the URL {url!r}")
    # A URI filename, so that SQLite itself enforces the mode (ro cannot write, rw cannot create).
    uri_path = quote(os.path.abspath(database), safe="/")
    sa_url = URL.create("sqlite+pysqlite", database=f"file:{uri_path}", query={"mode": mode, "uri": "true"})
    return sa_url, SQLiteDialect(sa_url, path=os.path.abspath(database), read_only=mode == "ro")


def _require(module: str, extra: str, url: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise DriverMissing(
            f"{redact(url)} needs the {module} driver, which is not installed; pip install 'quebec[{extra}]'"
        )


def for_url(url: str, *, use_skip_locked: bool = True) -> tuple[URL, Dialect]:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"database URL {url!r} is empty; pass e.g. {_SUPPORTED}")
    url = url.strip()
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite" or scheme.startswith("sqlite+"):
        if scheme != "sqlite":
            url = "sqlite:" + url.split(":", 1)[1]
        return _sqlite(url)
    if "://" not in url:
        raise ConfigError(f"database URL {redact(url)!r} is malformed; use {_SUPPORTED}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database URL {redact(url)!r} is malformed; use {_SUPPORTED}") from None
    base = parsed.drivername.split("+")[0]
    dialect: Dialect
    if base in ("postgres", "postgresql"):
        _require("psycopg", "postgres", url)
        mode = parsed.query.get("sslmode")
        if mode is not None:  # the rule the sslmode keyword and QUEBEC_SSLMODE go through
            sslmode(mode if isinstance(mode, str) else mode[-1], "the database URL's sslmode")
        parsed = parsed.set(drivername="postgresql+psycopg")
        dialect = PostgreSQLDialect(parsed, use_skip_locked=use_skip_locked)
    elif base in ("mysql", "mariadb"):
        _require("pymysql", "mysql", url)
        query = dict(parsed.query)
        query.setdefault("charset", "utf8mb4")
        parsed = parsed.set(drivername="mysql+pymysql", query=query)
        dialect = MySQLDialect(parsed, use_skip_locked=use_skip_locked)
    else:
        raise ConfigError(f"database URL scheme {base!r} is not supported; use {_SUPPORTED}")
    if not parsed.database:
        raise ConfigError(f"database URL {redact(url)!r} names no database; add it after the host, e.g. /myapp")
    return parsed, dialect
