"""Network addresses as users write them: ``HOST:PORT``, ``[IPv6]:PORT``, or ``HOST`` with a default port.

``parse_hostport`` and ``check_port`` raise ConfigError saying what is wrong (a ValueError too),
so a bad address is one line at start instead of a connection retried for ever.
"""
from __future__ import annotations

from aiswatch.common.errors import ConfigError


def check_port(port: int | str, where: str | None = None, *, allow_zero: bool = False) -> int:
    """``port`` as an int if it is a usable port (1-65535; 0 too with ``allow_zero``, for a
    listener that takes any free port), else ConfigError."""
    text = str(port).strip()
    context = f" in {where!r}" if where is not None else ""
    if isinstance(port, bool) or not (isinstance(port, int) or (text.isascii() and text.isdigit())):
        raise ConfigError(f"port {port!r}{context} is not a number")
    number = int(text)
    low = 0 if allow_zero else 1
    if not low <= number <= 65535:
        raise ConfigError(f"port {number}{context} is out of range: a port is {low}-65535")
    return number


def parse_hostport(address: str, default_port: int | None = None, *, allow_zero: bool = False) -> tuple[str, int]:
    """``"HOST:PORT"``, ``"[IPv6]:PORT"`` (or ``"HOST"``/``"[IPv6]"`` when ``default_port`` is
    given) -> ``(host, port)``."""
    text = str(address).strip()
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1:] if end >= 0 else ""
        if end < 0 or (rest and not rest.startswith(":")) or (not rest and default_port is None):
            raise ConfigError(f"{address!r}: expected [IPv6 address]:PORT")
        host, port = text[1:end], (rest[1:] if rest else default_port)
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            if default_port is None:
                raise ConfigError(f"{address!r}: expected HOST:PORT")
            host, port = text, default_port
        elif ":" in host:
            raise ConfigError(f"{address!r}: an IPv6 address goes in brackets, [{host}]:{port}")
    if not host:
        raise ConfigError(f"{address!r}: no host before the port")
    return host, check_port(port, address, allow_zero=allow_zero)
