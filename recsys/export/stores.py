"""Serving-store URLs: which store a URL names, its credentials, and how it is shown in messages.

``postgresql://user[:password]@host:port/db`` and ``redis://[:password@]host:port/n``. A password
missing from the URL comes from ``$RECSYS_STORE_PASSWORD`` (PostgreSQL also reads libpq's own
``$PGPASSWORD``); under Airflow the export task builds the URL from a connection. Messages show a
URL without its password (:func:`shown`).
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit, urlunsplit

from recsys.errors import RecsysError

PASSWORD_ENV = "RECSYS_STORE_PASSWORD"
POSTGRES, REDIS = "postgresql", "redis"
SCHEMES = {"postgresql": POSTGRES, "postgres": POSTGRES, "redis": REDIS}
OWNER = "created by recsys export"  # the mark of what recsys may replace or drop


def kind(url: str) -> str:
    """``postgresql`` or ``redis`` for a store URL, or one sentence naming the option."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        raise RecsysError(
            f"store URL {shown(url)!r} is neither postgresql://user@host:port/db nor "
            "redis://host:port/n; pass one of those"
        )
    return SCHEMES[scheme]


def with_password(url: str) -> str:
    """The URL with ``$RECSYS_STORE_PASSWORD`` filled in when it names no password."""
    parts = urlsplit(url)
    secret = os.environ.get(PASSWORD_ENV)
    if parts.password is not None or not secret:
        return url
    user = quote(parts.username or "", safe="")
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{user}:{quote(secret, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def shown(url: str) -> str:
    """The URL as messages and logs show it: the password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
