"""The one base class of errors a user can act on.

Every such error (a bad file, wrong weights, a bad config key, no face found, ...) derives from
:class:`UserError` as well as from its usual built-in base (``ValueError``, ``RuntimeError``), so callers
that catch those keep working. ``pcavs.cli.main`` catches ``UserError`` once: it prints the message
(which says which file, what is wrong and what to do) and exits with status 2; anything else is a bug
and keeps its traceback. The UI shows a ``UserError``'s message as it is, and ``pcavs batch`` records it
as the row's reason.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; its message says what to do."""


__all__ = ["UserError"]
