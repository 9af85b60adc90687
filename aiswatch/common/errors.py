"""The error a user fixes: ``ConfigError`` (a bad setting, argument, URL, key file, address),
and ``did_you_mean`` for the nearest known name of a mistyped one.

The command line shows a ConfigError as one ``Error:`` line without a traceback; a subclass of
ValueError, so code that checks values may raise it where a plain ValueError was expected.
"""


class ConfigError(ValueError):
    """A problem with what the user gave us (configuration, arguments, files named in them)."""


def did_you_mean(word: str, known) -> str:
    """`` (did you mean 'x'?)`` for the known name closest to a mistyped ``word``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
