"""The archive's one error type."""

from __future__ import annotations


class ArchiveError(RuntimeError):
    """A clip could not be cut, fetched or stored; the message says which source and why."""
