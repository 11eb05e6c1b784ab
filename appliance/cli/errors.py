"""Command-line errors."""


class UsageError(Exception):
    """A bad command line; reported like a program error, with exit status 2."""
