"""One MCP session held open for a server, on an event loop in a background thread, so that
sync callers (the app's script threads, the CLI) can call it: the SDK is async, and opening a
session per call costs a process start over stdio (docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

T = TypeVar("T")
SessionOpener = Callable[[], AbstractAsyncContextManager[ClientSession]]


class McpConnection:
    """Opens the session on first use; a session that failed (the server died, the transport
    broke) is dropped and the next call opens a new one."""

    def __init__(self, open_session: SessionOpener, name: str) -> None:
        self._open = open_session
        self._name = name
        self._thread_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: ClientSession | None = None
        self._stop: asyncio.Event | None = None
        self._holder: asyncio.Task[None] | None = None
        self._opening: asyncio.Lock | None = None

    def run(self, work: Callable[[ClientSession], Awaitable[T]], timeout_s: float) -> T:
        """``work`` on the session within ``timeout_s`` (opening it included); raises
        ``TimeoutError`` past it, or what the session or transport raised."""
        future = asyncio.run_coroutine_threadsafe(self._run(work, timeout_s), self._ensure_loop())
        try:
            return future.result(timeout_s + 5)  # the loop's own deadline comes first
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    def close(self) -> None:
        with self._thread_lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._drop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._thread_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name=f"mcp-{self._name}", daemon=True
                )
                thread.start()
                self._loop = loop
            return self._loop

    async def _run(self, work: Callable[[ClientSession], Awaitable[T]], timeout_s: float) -> T:
        try:
            return await self._run_within(work, timeout_s)
        except TimeoutError:
            await self._drop(cancel=True)  # a hung server (or stdio process) is not reused
            raise

    async def _run_within(
        self, work: Callable[[ClientSession], Awaitable[T]], timeout_s: float
    ) -> T:
        async with asyncio.timeout(timeout_s):
            session = await self._ensure_session()
            try:
                return await work(session)
            except MCPError as exc:
                if exc.error.code == CONNECTION_CLOSED:
                    await self._drop(cancel=True)  # the server went away: the next call reopens
                raise  # else the server answered: the session is fine
            except Exception:
                await self._drop(cancel=True)  # the transport broke: the next call reopens
                raise

    async def _ensure_session(self) -> ClientSession:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._session is not None and self._holder is not None and not self._holder.done():
                return self._session
            await self._drop()
            ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._holder = asyncio.create_task(self._hold(ready, self._stop))
            try:
                self._session = await asyncio.shield(ready)
            except BaseException:
                await self._drop(cancel=True)
                raise
            return self._session

    async def _hold(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        """Enters and leaves the session in one task, as the SDK's task groups require."""
        try:
            async with self._open() as session:
                ready.set_result(session)
                await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the caller waiting for the session
            if not ready.done():
                ready.set_exception(exc)
            # else the session broke after it opened: the next call finds the holder done

    async def _drop(self, *, cancel: bool = False) -> None:
        """Closes the session: politely, or at once (``cancel``) when it is broken or opening."""
        holder, self._holder, self._session = self._holder, None, None
        if holder is None or holder.done():
            return
        if cancel:
            holder.cancel()
        elif self._stop is not None:
            self._stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(holder, 5)
