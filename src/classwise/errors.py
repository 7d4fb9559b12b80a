"""Errors a user can cause and fix; the message is one sentence naming the thing and the fix."""


class UserError(RuntimeError):
    """An error the user can fix; its message is one sentence."""
