"""The error a user fixes: ``ConfigError`` (a bad setting, argument, URL, key file, address).

The command line shows it as one ``Error:`` line without a traceback; a subclass of ValueError, so
code that checks values may raise it where a plain ValueError was expected.
"""


class ConfigError(ValueError):
    """A problem with what the user gave us (configuration, arguments, files named in them)."""
