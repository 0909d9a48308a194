"""The one exception type raised at the project's boundaries (files, configs, command lines)."""


class AutoclintError(Exception):
    """A problem with the user's input, stated in one sentence that names the file or value.

    Commands and the harness print it as a single line, never as a traceback.
    """
