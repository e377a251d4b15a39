"""The sidecar's two exceptions: an error the client gets with its HTTP status, and a
generation stopped because its client went away."""

from __future__ import annotations


class ApiError(Exception):
    """An error with the HTTP status and the message the client gets."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Cancelled(Exception):
    """The client went away or the server is shutting down."""
