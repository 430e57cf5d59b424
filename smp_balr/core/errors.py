"""The one exception type that stages turn into a one-line message and a non-zero exit."""


class UserError(Exception):
    """Bad input or configuration that the user can fix.

    The message must say what is wrong, where (file, column, parameter) and how to
    fix it, on one line. Stage scripts catch it through :func:`smp_balr.core.cli.run`.
    """
