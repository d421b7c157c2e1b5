"""How ``AiohttpRequest`` (``advisor/channels/http.py``) sends uploads: byte for byte as httpx does.

* The body is ``multipart/form-data`` with the parts encoded like httpx encodes them: the fields first,
  without a Content-Type, then the files with their file name and Content-Type. aiohttp's own
  ``FormData`` would percent-encode file names, and Telegram would show ``my%20report.pdf``.
* Each write of the body to the connection must finish within the write timeout (aiohttp has none).
* Closing the body leaves the caller's file handles open, as httpx does.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Mapping
from typing import IO, Final

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict

__all__ = ["Upload", "multipart"]

# aiohttp.BytesPayload warns (ResourceWarning) about bodies over 1 MiB given as bytes; PTB hands every
# file it read to the request layer as bytes, and writing them in one piece is what httpx does too.
LARGE_BYTES: Final[int] = 1 << 20

# httpx's encoding of a multipart name or file name (HTML5 form encoding: '"' -> %22, '\' -> '\\',
# control characters -> %XX), plus ESC and DEL, which httpx sends raw and aiohttp refuses in a header.
_FORM_ESCAPES: Final[dict[int, str]] = {
    ord('"'): "%22",
    ord("\\"): "\\\\",
    **{c: f"%{c:02X}" for c in (*range(0x20), 0x7F)},
}


def _form_param(name: str, value: str) -> str:
    return f'{name}="{value.translate(_FORM_ESCAPES)}"'


def multipart(fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes | IO[bytes], str]]) -> aiohttp.Payload:
    """The multipart/form-data body httpx sends for ``data=fields, files=files``: the fields first,
    without a Content-Type, then the files with their file name and Content-Type."""
    form = aiohttp.MultipartWriter("form-data")
    for name, value in fields.items():
        disposition = f"form-data; {_form_param('name', name)}"
        field = aiohttp.BytesPayload(value.encode(), headers={hdrs.CONTENT_DISPOSITION: disposition})
        del field.headers[hdrs.CONTENT_TYPE]
        form.append_payload(field)
    for name, (filename, content, mimetype) in files.items():
        disposition = f"form-data; {_form_param('name', name)}"
        if filename:
            disposition += f"; {_form_param('filename', filename)}"
        part = _file_part(content, mimetype, {hdrs.CONTENT_DISPOSITION: disposition})
        part.headers[hdrs.CONTENT_TYPE] = part.headers.pop(hdrs.CONTENT_TYPE)  # after the disposition, as httpx
        form.append_payload(part)
    return form


def _file_part(content: bytes | IO[bytes], mimetype: str, headers: dict[str, str]) -> aiohttp.Payload:
    if isinstance(content, bytes):
        if len(content) <= LARGE_BYTES:
            return aiohttp.BytesPayload(content, content_type=mimetype, headers=headers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            return aiohttp.BytesPayload(content, content_type=mimetype, headers=headers)
    # A file handle (InputFile(..., read_file_handle=False)): httpx sends it from its start.
    with contextlib.suppress(AttributeError, OSError, ValueError):
        content.seek(0)
    try:
        return aiohttp.get_payload(content, content_type=mimetype, headers=headers)
    except aiohttp.payload.LookupError:  # not an io.IOBase, but something with read()
        return aiohttp.IOBasePayload(content, content_type=mimetype, headers=headers)


class _TimedWriter(AbstractStreamWriter):
    """Passes everything to ``writer``; each write (and drain) must finish within ``timeout`` seconds."""

    def __init__(self, writer: AbstractStreamWriter, timeout: float) -> None:
        self._writer = writer
        self._timeout = timeout

    @property
    def transport(self) -> asyncio.WriteTransport | None:
        return self._writer.transport

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        async with asyncio.timeout(self._timeout):
            await self._writer.write(chunk)

    async def drain(self) -> None:
        async with asyncio.timeout(self._timeout):
            await self._writer.drain()

    async def write_eof(self, chunk: bytes = b"") -> None:
        await self._writer.write_eof(chunk)

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        self._writer.enable_compression(encoding, strategy)

    def enable_chunking(self) -> None:
        self._writer.enable_chunking()

    async def write_headers(self, status_line: str, headers: CIMultiDict[str]) -> None:
        await self._writer.write_headers(status_line, headers)

    def send_headers(self) -> None:
        self._writer.send_headers()


class Upload(aiohttp.Payload):
    """A multipart upload as httpx sends one.

    * Each write of it to the connection must finish within ``write_timeout`` seconds (``None``: no
      limit). A write that takes longer raises ``TimeoutError`` in aiohttp's body-writing task; aiohttp
      hands it on unchanged (it tells timeouts from other OSErrors there) and the request raises it.
    * Closing it, which aiohttp does after every request, leaves the file handles in it open: they are
      the caller's, and httpx leaves them open (aiohttp's own payloads would close them).
    """

    def __init__(self, body: aiohttp.Payload, write_timeout: float | None) -> None:
        super().__init__(body, headers=body.headers, content_type=body.content_type)
        self._body = body
        self._write_timeout = write_timeout

    def _writer(self, writer: AbstractStreamWriter) -> AbstractStreamWriter:
        return writer if self._write_timeout is None else _TimedWriter(writer, self._write_timeout)

    @property
    def size(self) -> int | None:
        return self._body.size

    @property
    def consumed(self) -> bool:
        return self._body.consumed

    @property
    def autoclose(self) -> bool:
        return True  # nothing of its own to close

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._body.decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return await self._body.as_bytes(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self._body.write(self._writer(writer))

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        await self._body.write_with_length(self._writer(writer), content_length)

    async def close(self) -> None:
        """Leaves the caller's file handles open (see the class)."""
