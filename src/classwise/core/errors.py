"""The one family of errors a user can cause and fix; each message is one sentence naming the thing and the fix.

The project CLI (``classwise.cli``) and ``python -m classwise.ablation`` print a ``ClasswiseError``
as ``Error: <sentence>`` with exit code 2 and no traceback; anything else is a bug and keeps its traceback.
"""


class ClasswiseError(Exception):
    """An error the user can fix; its message is one sentence naming the file, class or parameter and the fix."""


class ConfigError(ClasswiseError, ValueError):
    """A parameter is unknown, missing, of the wrong type or out of range."""


class DataError(ClasswiseError, ValueError):
    """Input data or a saved dataset cannot be used as it is (missing, empty, out of step with another)."""


class ModelError(ClasswiseError):
    """A saved or registered model does not fit the data or cannot be loaded safely."""


class RunError(ClasswiseError, RuntimeError):
    """The run cannot go on in this environment (device, lock, tracking store, a diverging loss)."""
