"""The site's own errors: an HTTPException whose detail DermaScan wrote for the person.

``webapp.app``'s error handler passes a :class:`SiteError` on as it is and rewords every
other HTTPException (Litestar's own: the body-size limit, unknown routes, methods) by its
status code alone, never by matching the framework's message text.
"""

from __future__ import annotations

from litestar.exceptions import HTTPException

__all__ = ["SiteError"]


class SiteError(HTTPException):
    """An error with DermaScan's own status, detail and headers."""
