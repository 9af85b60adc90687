"""Secrets: read from the environment or a key file, and kept out of everything printed.

``read_secret`` takes an environment variable, else a file; ``redact_url`` replaces the
user:password part of every URL in a text; ``is_secret_key`` says which configuration keys hold
secrets (never read from the config file itself, and shown as ``***``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

from aiswatch.common.errors import ConfigError

# Keys whose value is a secret, compared lower-case with '-' read as '_'.
SECRET_KEYS = {"api_key", "password", "apikey", "api_key_value", "token", "secret", "passwd"}

# user:password@ (or user@) right after a scheme: everything up to the last @ before the host
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")


def is_secret_key(key: Any) -> bool:
    return str(key).lower().replace("-", "_") in SECRET_KEYS


def has_url_credentials(value: Any) -> bool:
    """A URL with a user:password part (``http://elastic:pw@host``)."""
    if not isinstance(value, str) or "://" not in value:
        return False
    userinfo = value.split("://", 1)[1].split("/", 1)[0]
    return "@" in userinfo and ":" in userinfo.rsplit("@", 1)[0]


def redact_url(text: str) -> str:
    """``text`` (a URL, or a message with URLs in it, an exception's say) with every URL's
    user:password part replaced by ``***``, for logs and messages."""
    return _USERINFO.sub(r"\g<scheme>***@", str(text))


def read_secret(env_name: str, file_path: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret from the environment variable ``env_name``, else from ``file_path`` (stripped);
    ConfigError if the file is named but missing."""
    environ = os.environ if environ is None else environ
    if environ.get(env_name):
        return environ[env_name].strip()
    if file_path:
        p = Path(os.path.expanduser(file_path))
        if not p.is_file():
            raise ConfigError(f"key file not found: {file_path}")
        return p.read_text().strip()
    return None
