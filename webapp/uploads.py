"""Receiving an upload: the body within its deadlines, one of a bounded number of places
to receive it in, and the form's ``explain`` flag. Errors are HTTPExceptions that close the
connection where the rest of the body is left unread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import InternalServerException

from webapp.errors import SiteError
from webapp.settings import Settings

__all__ = ["CLOSE", "NO_STORE", "explain_flag", "receive_body", "upload_slot"]

NO_STORE = {"Cache-Control": "no-store"}  # an answer about someone's skin is never cached
CLOSE = {"Connection": "close"}  # the rest of the body is not read: the connection is done


def explain_flag(form: dict) -> bool:
    field = form.get("explain")
    if field is None:
        return False
    value = field.data.strip().lower()
    if value not in (b"true", b"false"):
        raise SiteError(
            status_code=400, detail="The field 'explain' must be true or false.", headers=NO_STORE
        )
    return value == b"true"


async def receive_body(request: Request, settings: Settings) -> bytes:
    """The request body, read within the body deadline and the idle timeout between chunks
    (408 and a closed connection otherwise); the body-size limit still applies (413)."""
    chunks: list[bytes] = []
    deadline = anyio.current_time() + settings.body_timeout_s
    stream = request.stream()
    try:
        while True:
            wait = min(settings.body_idle_s, deadline - anyio.current_time())
            with anyio.move_on_after(max(wait, 0.0)) as waited:
                try:
                    chunk = await anext(stream, None)
                except InternalServerException:  # Litestar's word for a client that left
                    raise SiteError(
                        status_code=400,
                        detail="The upload was cut off before it ended.",
                        headers={**CLOSE, **NO_STORE},
                    ) from None
            if waited.cancelled_caught:
                raise SiteError(
                    status_code=408,
                    detail="The upload stalled or took too long. Check the connection and "
                    "try again.",
                    headers={**CLOSE, **NO_STORE},
                )
            if chunk is None:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        await stream.aclose()


@asynccontextmanager
async def upload_slot(state: State) -> AsyncIterator[None]:
    """One of ``max_uploads`` places for a body being received, waited for at most
    ``upload_wait_s`` (a burst of honest uploads queues briefly; when stalled clients hold
    every place the wait ends in 503)."""
    acquired = False
    with anyio.move_on_after(state.settings.upload_wait_s):
        await state.upload_slots.acquire()
        acquired = True
    if not acquired:
        raise SiteError(
            status_code=503,
            detail="The server is receiving too many uploads. Please try again in a moment.",
            headers={"Retry-After": "5", **CLOSE, **NO_STORE},
        )
    try:
        with state.metrics.uploading():
            yield
    finally:
        state.upload_slots.release()
