"""A request body larger than one upload may be (KDESK_MAX_UPLOAD_MB, and a little for the form
around it) is refused with 413 before it is read: otherwise the multipart parser would spool it
to disk before the key is even checked. Bodies without a Content-Length are counted as they
arrive."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from knowledge.service.errors import error_body

FORM_SLACK = 1024 * 1024  # the multipart framing and the other fields of an upload


class BodyLimit:
    def __init__(self, app: ASGIApp, max_upload_mb: int) -> None:
        self.app = app
        self.limit = max_upload_mb * 1024 * 1024 + FORM_SLACK
        self.max_upload_mb = max_upload_mb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0
        refused = responded = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if received > self.limit:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # the app is told the client left
                    if not responded:
                        refused = True
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if not refused:  # after a refusal the app's own response goes nowhere
                responded = responded or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        message = (
            f"The request is larger than the upload limit of {self.max_upload_mb} MB "
            "(KDESK_MAX_UPLOAD_MB): send one file per request."
        )
        body = json.dumps(error_body(message, "file_too_large", 413)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
