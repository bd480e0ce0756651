#!/usr/bin/env python3
"""ClickHouse-compatible HTTP front end over the embedded ClickHouse engine of chDB.

Role
----
Local-development stand-in for a ClickHouse server. It speaks the ClickHouse
HTTP interface (port 8123 protocol) closely enough for the Rust `clickhouse`
crate (0.15.x, default settings), curl and Grafana-style HTTP clients, while
the actual SQL work is done by the real ClickHouse engine shipped in chDB
(`chdb-core`). Data lives in a persistent chDB directory (`--data`) and
survives restarts.

    clickhouse_http.py --data DIR [--host 127.0.0.1] [--port 8123] [--pool 4]

What is emulated
----------------
* `GET|POST /` with the query in the `query` URL parameter and/or the body
  (URL text + "\\n" + body, as ClickHouse does). For `INSERT ... FORMAT X` the
  head may come from the URL and the data from the (streamed) body.
  `multipart/form-data` bodies (used by the crate when it sends `param_*`
  query parameters) are accepted. `GET /ping`, `GET /` -> "Ok.".
* URL parameters: `database`, `default_format`, `query_id`, `param_<name>`,
  `compress`, `decompress`, `enable_http_compression`,
  `http_zlib_compression_level`, `user`/`password` (ignored), and every other
  parameter is a ClickHouse setting for that request only.
* Request bodies: `Transfer-Encoding: chunked`, `Content-Encoding:
  gzip|deflate|lz4`, and ClickHouse's native compressed-block framing when
  `decompress=1` (CityHash128 v1.0.2 checksums are verified).
* Responses: `compress=1` -> native framing (LZ4 blocks);
  `Accept-Encoding: lz4|gzip|deflate` -> HTTP compression (on by default, as
  in ClickHouse >= 25.10, unless `enable_http_compression=0`).
* Errors: ClickHouse text (`Code: N. DB::Exception: ... (NAME) (version ...)`),
  `X-ClickHouse-Exception-Code` header and the HTTP status ClickHouse maps the
  code to (400/403/404/500/...).

Design notes
------------
* chDB runs one engine per process and hands out *connections*; each
  connection has its own session state (current database, `SET` values) and
  queries on different connections run in parallel. We keep a small pool.
  Per-request state (settings, database, GET's readonly=2, client-issued
  `SET`/`USE`) is applied with `SET`/`USE` on the leased connection, and that
  connection is then thrown away and replaced by a fresh one (cheap: ~0.3 ms),
  so nothing leaks into later requests. An extra "anchor" connection is held
  for the whole lifetime so the engine never shuts down while a pool slot is
  being replaced.
* Results are produced by chDB in the requested format and fully buffered
  before the status line is sent (chDB's streaming reader re-emits format
  headers per chunk, so it cannot be relayed as one stream). Consequently an
  error is always reported with a proper status code; no mid-stream exception
  markers are ever needed.
* `INSERT ... FORMAT X` data is streamed into chDB's `send_insert()` API
  (constant memory); the body is never fully buffered for URL-head inserts.

Known gaps (acceptable for local development)
---------------------------------------------
* `session_id` is ignored: no HTTP sessions, so `SET`, `USE` and temporary
  tables do not carry over between requests.
* `INSERT ... SELECT ... FROM input() FORMAT X` with data, and external tables
  (multipart file parts) are rejected with NOT_IMPLEMENTED.
* No zstd/br compression (request or response); results are held in memory.
* Request lines are limited to 64 KiB by http.server (use POST bodies for
  long queries). Only one process can open a chDB data directory at a time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import queue
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, Iterator, Optional
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.block
import lz4.frame
from clickhouse_cityhash.cityhash import CityHash128

# --------------------------------------------------------------------------
# Error codes and their HTTP statuses (numbers taken from the 26.9 engine via
# errorCodeToName(); the status mapping mirrors
# src/Server/HTTP/exceptionCodeToHTTPStatus.cpp).
# --------------------------------------------------------------------------

ERR_NAMES = {
    3: "UNEXPECTED_END_OF_FILE",
    33: "CANNOT_READ_ALL_DATA",
    36: "BAD_ARGUMENTS",
    39: "TOO_LARGE_SIZE_COMPRESSED",
    40: "CHECKSUM_DOESNT_MATCH",
    48: "NOT_IMPLEMENTED",
    62: "SYNTAX_ERROR",
    73: "UNKNOWN_FORMAT",
    89: "UNKNOWN_COMPRESSION_METHOD",
    115: "UNKNOWN_SETTING",
    271: "CANNOT_DECOMPRESS",
    381: "HTTP_LENGTH_REQUIRED",
    1001: "STD_EXCEPTION",
    1002: "UNKNOWN_EXCEPTION",
}

_STATUS_BY_CODE = {194: 401}  # REQUIRED_PASSWORD
_STATUS_BY_CODE.update(dict.fromkeys(
    # UNKNOWN_USER, WRONG_PASSWORD, AUTHENTICATION_FAILED, SET_NON_GRANTED_ROLE, ACCESS_DENIED
    (192, 193, 516, 512, 497), 403))
_STATUS_BY_CODE.update(dict.fromkeys(
    # BAD_ARGUMENTS, CANNOT_COMPILE_REGEXP, CANNOT_PARSE_{TEXT,ESCAPE_SEQUENCE,QUOTED_STRING,
    # DATE,DATETIME,NUMBER,DOMAIN_VALUE_FROM_STRING,IPV4,IPV6,INPUT_ASSERTION_FAILED,UUID},
    # DUPLICATE_COLUMN, ILLEGAL_COLUMN, UNKNOWN_ELEMENT_IN_AST, UNKNOWN_TYPE_OF_AST_NODE,
    # THERE_IS_NO_COLUMN, TOO_DEEP_AST, TOO_BIG_AST, UNEXPECTED_AST_STRUCTURE, SYNTAX_ERROR,
    # INCORRECT_DATA, TYPE_MISMATCH, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    (36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168,
     223, 62, 117, 53, 321), 400))
_STATUS_BY_CODE.update(dict.fromkeys(
    # UNKNOWN_{TABLE,FUNCTION,IDENTIFIER,TYPE,STORAGE,DATABASE,SETTING,DIRECTION_OF_SORTING,
    # AGGREGATE_FUNCTION,FORMAT,DATABASE_ENGINE,TYPE_OF_QUERY,ROLE}
    (60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511), 404))
_STATUS_BY_CODE.update({
    229: 413,  # QUERY_IS_TOO_LARGE
    48: 501,   # NOT_IMPLEMENTED
    209: 503,  # SOCKET_TIMEOUT
    76: 503,   # CANNOT_OPEN_FILE
    381: 411,  # HTTP_LENGTH_REQUIRED
    159: 408,  # TIMEOUT_EXCEEDED
    439: 503,  # CANNOT_SCHEDULE_TASK
    779: 415,  # UNSUPPORTED_MEDIA_TYPE
})

ENGINE_VERSION = getattr(chdb, "engine_version", "") or chdb.__version__

_CODE_RE = re.compile(r"Code: (\d+)\. ")
_VERSION_SUFFIX_RE = re.compile(r"\s*\(version [^()]*(?:\([^()]*\))?\)\s*$")


class CHError(Exception):
    """An error reported to the client in ClickHouse's format."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text  # "Code: N. DB::Exception: ... (NAME)" without version suffix

    @classmethod
    def make(cls, code: int, message: str) -> "CHError":
        name = ERR_NAMES.get(code, "UNKNOWN_EXCEPTION")
        return cls(code, f"Code: {code}. DB::Exception: {message}. ({name})")

    @classmethod
    def from_engine(cls, exc: BaseException) -> "CHError":
        """Wrap an exception raised by chDB (its text already starts with `Code: N.`,
        possibly behind a Python-side prefix such as 'Streaming insert append failed: ')."""
        text = str(exc).strip()
        m = _CODE_RE.search(text)
        if not m:
            return cls.make(1001, f"{type(exc).__name__}: {text}")
        return cls(int(m.group(1)), _VERSION_SUFFIX_RE.sub("", text[m.start():]))

    @property
    def http_status(self) -> int:
        return _STATUS_BY_CODE.get(self.code, 500)

    def body(self) -> bytes:
        return f"{self.text} (version {ENGINE_VERSION} (official build))\n".encode("utf-8", "replace")


# --------------------------------------------------------------------------
# Minimal SQL scanner: finds the statement kind, the FORMAT clause and where
# inline INSERT data starts. It tokenizes lazily, so data after
# `INSERT ... FORMAT X` is never scanned.
# --------------------------------------------------------------------------

_TOKEN_RE = re.compile(rb"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|\#[ !][^\n]*|/\*.*?\*/)
  | (?P<str>'(?:[^'\\]|\\.|'')*')
  | (?P<qid>"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)
  | (?P<word>[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)
  | (?P<num>[0-9][0-9A-Za-z_.]*)
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
  | (?P<other>.)
""", re.X | re.S)

# Words that can follow a column literally named `format` (`SELECT format FROM t`):
# they are never format names, so they must not be taken for a FORMAT clause.
_NOT_FORMAT_NAMES = {b"FROM", b"WHERE", b"AS", b"AND", b"OR", b"GROUP", b"ORDER", b"LIMIT",
                     b"SETTINGS", b"UNION", b"HAVING", b"INTO", b"FINAL", b"PREWHERE"}


@dataclass
class QueryShape:
    kind: str = ""                 # first keyword, upper-case ("SELECT", "INSERT", ...)
    fmt: Optional[str] = None      # FORMAT clause (output format, or INSERT input format)
    insert_head_end: int = -1      # INSERT ... FORMAT X: byte offset of FORMAT keyword
    data_start: int = -1           # INSERT ... FORMAT X: byte offset of inline data
    insert_select: bool = False    # INSERT ... SELECT (with FORMAT: `input()` style)
    session_changing: bool = False  # SET / USE / temporary tables: state sticks to a connection


def _tokens(buf: bytes) -> Iterator[tuple[str, bytes, int, int, int]]:
    """Yield (kind, text, start, end, depth) for significant tokens."""
    depth = 0
    for m in _TOKEN_RE.finditer(buf):
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        if kind == "close":
            depth = max(0, depth - 1)
        yield kind, m.group(), m.start(), m.end(), depth
        if kind == "open":
            depth += 1


def _unquote_ident(kind: str, text: bytes) -> str:
    s = text.decode("utf-8", "replace")
    return s[1:-1] if kind == "qid" else s


def analyze_query(buf: bytes) -> QueryShape:
    shape = QueryShape()
    toks = _tokens(buf)
    words: list[bytes] = []
    for kind, text, start, end, depth in toks:
        if kind == "word":
            shape.kind = text.decode("ascii", "replace").upper()
            words.append(text.upper())
            break
        if kind != "open":  # `(SELECT 1)`: skip leading parentheses
            return shape
    else:
        return shape

    if shape.kind == "INSERT":
        for kind, text, start, end, depth in toks:
            if depth or kind != "word":
                continue
            up = text.upper()
            if up in (b"SELECT", b"WITH"):
                shape.insert_select = True
            elif up == b"VALUES" and not shape.insert_select:
                return shape  # `INSERT ... VALUES (...)`: run as a plain query
            elif up == b"FORMAT":
                nxt = next(toks, None)
                if nxt is None or nxt[0] not in ("word", "qid"):
                    return shape
                shape.fmt = _unquote_ident(nxt[0], nxt[1])
                shape.insert_head_end = start
                # ClickHouse: data starts after spaces/tabs and at most one line break.
                pos = nxt[3]
                while pos < len(buf) and buf[pos] in b" \t\f":
                    pos += 1
                if buf[pos:pos + 1] == b"\r":
                    pos += 1
                if buf[pos:pos + 1] == b"\n":
                    pos += 1
                shape.data_start = pos
                return shape
        return shape

    prev = None
    for kind, text, start, end, depth in toks:
        if len(words) < 3 and kind == "word":
            words.append(text.upper())
        if depth == 0 and prev is not None and prev[0] == "word" and prev[1].upper() == b"FORMAT" \
                and kind in ("word", "qid") and text.upper() not in _NOT_FORMAT_NAMES:
            shape.fmt = _unquote_ident(kind, text)
        prev = (kind, text)
    shape.session_changing = (
        shape.kind in ("SET", "USE", "BEGIN", "COMMIT", "ROLLBACK")
        or (shape.kind == "CREATE" and b"TEMPORARY" in words[1:3]))
    return shape


def quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --------------------------------------------------------------------------
# Compression: ClickHouse native block framing and HTTP content encodings.
# --------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1
_METHOD_NONE, _METHOD_LZ4, _METHOD_ZSTD = 0x02, 0x82, 0x90
_NATIVE_META = 16 + 9            # checksum + (method, compressed size, uncompressed size)
_MAX_NATIVE_BLOCK = 1 << 30      # ClickHouse's DBMS_MAX_COMPRESSED_SIZE
_NATIVE_OUT_BLOCK = 1 << 20      # uncompressed bytes per emitted block (ClickHouse: 1 MiB)


def native_checksum(block: bytes) -> bytes:
    """CityHash128 (v1.0.2) as ClickHouse stores it: low 64-bit word first, both LE.

    clickhouse-cityhash returns the 128-bit value with the words swapped relative to
    ClickHouse's on-wire order (the Rust crate does `rotate_right(64)` for the same reason).
    """
    h = CityHash128(block)
    return struct.pack("<QQ", h >> 64, h & _MASK64)


def native_compress(data) -> Iterator[bytes]:
    """Frame `data` as ClickHouse compressed blocks (LZ4), as for `compress=1`."""
    view = memoryview(data)
    for off in range(0, len(view), _NATIVE_OUT_BLOCK):
        piece = view[off:off + _NATIVE_OUT_BLOCK]
        comp = lz4.block.compress(piece, store_size=False)
        block = struct.pack("<BII", _METHOD_LZ4, 9 + len(comp), len(piece)) + comp
        yield native_checksum(block) + block


class NativeDeframer:
    """Incremental decoder for request bodies sent with `decompress=1`."""

    def __init__(self, verify_checksums: bool = True):
        self._buf = bytearray()
        self._verify = verify_checksums

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        buf = self._buf
        buf += chunk
        pos = 0
        while len(buf) - pos >= _NATIVE_META:
            method, csize, usize = struct.unpack_from("<BII", buf, pos + 16)
            if csize < 9 or csize > _MAX_NATIVE_BLOCK or usize > _MAX_NATIVE_BLOCK:
                raise CHError.make(39, f"Too large size_compressed_without_checksum: {csize}. "
                                       "Most likely corrupted data")
            end = pos + 16 + csize
            if len(buf) < end:
                break
            block = bytes(buf[pos + 16:end])
            if self._verify:
                expected = bytes(buf[pos:pos + 16])
                actual = native_checksum(block)
                if actual != expected:
                    raise CHError.make(
                        40, "Checksum doesn't match: corrupted data. Reference: "
                            f"{expected.hex()}. Actual: {actual.hex()}. "
                            f"Size of compressed block: {csize}")
            payload = block[9:]
            if method == _METHOD_LZ4:
                try:
                    out = lz4.block.decompress(payload, uncompressed_size=usize)
                except Exception as e:  # corrupt LZ4 stream
                    raise CHError.make(271, f"Cannot decompress LZ4-encoded data: {e}") from None
                if len(out) != usize:
                    raise CHError.make(271, "Cannot decompress LZ4-encoded data: size mismatch")
            elif method == _METHOD_NONE:
                out = payload
            else:
                what = "ZSTD (not supported by this server)" if method == _METHOD_ZSTD else hex(method)
                raise CHError.make(89, f"Unknown compression method: {what}")
            pos = end
            yield out
        if pos:
            del buf[:pos]

    def finish(self) -> None:
        if self._buf:
            raise CHError.make(33, "Cannot read all data: truncated compressed block at end of body "
                                   f"({len(self._buf)} bytes left)")


class _Lz4FrameStreamDecoder:
    """lz4.frame decompressor that also accepts concatenated frames."""

    def __init__(self):
        self._d = lz4.frame.LZ4FrameDecompressor()

    def decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self._d.decompress(data))
            if not self._d.eof:
                break
            data = self._d.unused_data
            self._d = lz4.frame.LZ4FrameDecompressor()
        return b"".join(out)

    def flush(self) -> bytes:
        return b""


def content_decoder(encoding: str):
    enc = encoding.strip().lower()
    if enc in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(47)  # auto-detect gzip or zlib header
    if enc == "lz4":
        return _Lz4FrameStreamDecoder()
    raise CHError.make(89, f"Unknown HTTP Content-Encoding: '{encoding}' "
                           "(this server supports gzip, deflate, lz4)")


def pick_response_encoding(accept: str) -> Optional[str]:
    """ClickHouse prefers zstd > br > lz4 > ... > gzip > deflate; we offer lz4/gzip/deflate."""
    offered = set()
    for item in accept.lower().split(","):
        name, _, params = item.strip().partition(";")
        if params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            offered.add(name.strip())
    for enc in ("lz4", "gzip", "deflate"):
        if enc in offered:
            return enc
    return None


def encode_body(data, encoding: str, level: int) -> bytes:
    if encoding == "lz4":  # same frame parameters as ClickHouse's Lz4DeflatingWriteBuffer
        return lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX256KB,
                                  block_linked=True, store_size=False)
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=level, mtime=0)
    return zlib.compress(data, level)  # "deflate" is zlib-wrapped, as in ClickHouse


# --------------------------------------------------------------------------
# chDB connection pool.
# --------------------------------------------------------------------------

class Lease:
    """A pooled connection lent to one request. Set `dirty` when session state was
    changed (SET/USE/...); the connection is then replaced instead of reused."""

    def __init__(self, conn):
        self.conn = conn
        self.dirty = False


class EnginePool:
    """`size` chDB connections to one data path, lent out one per request.

    Slots hold either a live connection or None ("reconnect on next use"), so a
    failed reconnect never shrinks the pool and cannot starve waiting requests."""

    def __init__(self, path: str, size: int):
        self._path = path
        self._connect_lock = threading.Lock()
        self._anchor = chdb.connect(path)  # keeps the engine alive; never lent out
        self._idle: "queue.LifoQueue" = queue.LifoQueue()
        self._size = size
        self._closed = False
        for _ in range(size):
            self._idle.put(self._new())

    def _new(self):
        with self._connect_lock:
            return chdb.connect(self._path)

    def scalar(self, sql: str) -> str:
        with self.lease() as lease:
            return lease.conn.query(sql, "TabSeparatedRaw").bytes().decode().strip()

    @contextmanager
    def lease(self) -> Iterator[Lease]:
        if self._closed:
            raise CHError.make(1002, "Server is shutting down")
        conn = self._idle.get()
        if conn is None:
            try:
                conn = self._new()
            except Exception as e:
                self._idle.put(None)
                raise CHError.from_engine(e) from None
        lease = Lease(conn)
        try:
            yield lease
        finally:
            if lease.dirty:
                try:
                    with self._connect_lock:
                        conn.close()
                except Exception:
                    pass
                try:
                    conn = self._new()
                except Exception as e:
                    sys.stderr.write(f"clickhouse_http: reconnect failed: {e}\n")
                    conn = None
            self._idle.put(conn)

    def close(self, timeout: float) -> int:
        """Wait (up to `timeout`) for leased connections to come back, close everything.
        Returns the number of connections that were still busy."""
        self._closed = True
        deadline = time.monotonic() + timeout
        closed = 0
        while closed < self._size:
            try:
                conn = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if conn is not None:
                conn.close()
            closed += 1
        self._anchor.close()
        return self._size - closed


# --------------------------------------------------------------------------
# Request body: Content-Length / chunked -> Content-Encoding -> native frames.
# --------------------------------------------------------------------------

_READ_SIZE = 1 << 20


class RequestBody:
    def __init__(self, handler: BaseHTTPRequestHandler):
        self._rfile = handler.rfile
        te = handler.headers.get("Transfer-Encoding", "").lower()
        self.chunked = "chunked" in te
        cl = handler.headers.get("Content-Length")
        self._remaining = int(cl) if (cl and not self.chunked) else 0
        self.finished = not self.chunked and self._remaining == 0
        self.raw_bytes = 0

    def _raw(self) -> Iterator[bytes]:
        """Yield the body as sent (undoing only the transfer encoding)."""
        rfile = self._rfile
        if not self.chunked:
            while self._remaining > 0:
                chunk = rfile.read(min(self._remaining, _READ_SIZE))
                if not chunk:
                    raise ConnectionError("client closed the connection mid-body")
                self._remaining -= len(chunk)
                self.raw_bytes += len(chunk)
                yield chunk
            self.finished = True
            return
        while not self.finished:
            line = rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise CHError.make(33, "Malformed chunked transfer encoding") from None
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # discard trailers
                self.finished = True
                return
            while size > 0:
                chunk = rfile.read(min(size, _READ_SIZE))
                if not chunk:
                    raise ConnectionError("client closed the connection mid-body")
                size -= len(chunk)
                self.raw_bytes += len(chunk)
                yield chunk
            rfile.readline(3)  # CRLF after chunk data

    def chunks(self, content_encoding: str, native_framed: bool,
               verify_checksums: bool = True) -> Iterator[bytes]:
        """Yield the decoded body: HTTP content decoding, then native deframing."""
        stream: Iterable[bytes] = self._raw()
        if content_encoding and content_encoding.strip().lower() not in ("identity", ""):
            stream = _decode_stream(stream, content_decoder(content_encoding))
        if native_framed:
            stream = _deframe_stream(stream, NativeDeframer(verify_checksums))
        for chunk in stream:
            if chunk:
                yield chunk

    def drain(self, limit: int) -> bool:
        """Discard what is left of the body. False if more than `limit` bytes remain
        (the caller should then close the connection instead)."""
        if self.finished:
            return True
        if not self.chunked and self._remaining > limit:
            return False
        seen = 0
        try:
            for chunk in self._raw():
                seen += len(chunk)
                if seen > limit:
                    return False
        except (OSError, CHError):
            return False
        return True


def _decode_stream(stream: Iterable[bytes], decoder) -> Iterator[bytes]:
    try:
        for chunk in stream:
            yield decoder.decompress(chunk)
        yield decoder.flush()
    except (zlib.error, RuntimeError) as e:
        raise CHError.make(271, f"Cannot decompress request body: {e}") from None


def _deframe_stream(stream: Iterable[bytes], deframer: NativeDeframer) -> Iterator[bytes]:
    for chunk in stream:
        yield from deframer.feed(chunk)
    deframer.finish()


def parse_multipart(body: bytes, content_type: str) -> dict[str, str]:
    """Parse a multipart/form-data body into {field name: text value}."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise CHError.make(36, "multipart/form-data without boundary")
    delim = b"--" + m.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        part = part[2:] if part.startswith(b"\r\n") else part
        part = part[:-2] if part.endswith(b"\r\n") else part
        head, _, value = part.partition(b"\r\n\r\n")
        disp = re.search(rb'(?im)^content-disposition:.*?\bname="([^"]*)"', head)
        if not disp:
            continue
        if re.search(rb'(?i)\bfilename=', head):
            raise CHError.make(48, "External tables (multipart file parts) are not supported "
                                   "by this development server")
        fields[disp.group(1).decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return fields


# --------------------------------------------------------------------------
# HTTP request handling.
# --------------------------------------------------------------------------

# URL parameters interpreted by the HTTP layer; everything else is a setting.
_HTTP_ONLY_PARAMS = {
    "query", "database", "default_format", "query_id", "user", "password", "quota_key",
    "session_id", "session_timeout", "session_check", "compress", "decompress",
    "enable_http_compression", "http_zlib_compression_level", "buffer_size",
    "wait_end_of_query", "stacktrace", "role", "client_protocol_version",
    "add_http_cors_header", "http_native_compression_disable_checksumming_on_decompress",
    "readonly",  # applied last, see _apply_session_state()
}
# Format names that chDB's Python wrapper turns into Python objects, not bytes.
_PY_ONLY_FORMATS = {"dataframe", "datastore", "arrowtable", "debug"}
_SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BODY_DRAIN_LIMIT = 16 << 20


def _flag(params: dict[str, str], name: str, default: bool = False) -> bool:
    """Boolean URL parameter (`1`/`true` vs `0`/`false`/empty)."""
    value = params.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "", "false")


def content_type_for(fmt: str) -> str:
    f = fmt.lower()
    if f.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=" + ("present" if "withnames" in f else "absent")
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f == "xml":
        return "application/xml; charset=UTF-8"
    if f.startswith(("rowbinary", "native", "parquet", "arrow", "orc", "avro", "protobuf",
                     "msgpack", "capnproto", "rawblob", "npy", "bson")):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


@dataclass
class RequestSpec:
    """Everything about a query request except its SQL text and body."""
    method: str
    params: dict[str, str]
    settings: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)
    database: str = ""
    default_format: str = "TabSeparated"
    query_id: str = ""


class ClickHouseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ClickHouse-chDB-dev"
    sys_version = ""
    timeout = 30  # idle keep-alive timeout (ClickHouse's keep_alive_timeout default)

    display_name = socket.gethostname()
    server_timezone = "UTC"
    default_http_compression = True

    # --- plumbing ---------------------------------------------------------

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args):  # noqa: A002 - silence http.server's own logging
        pass

    def _log(self, status: int, started: float, query: str) -> None:
        q = " ".join(query[:200].split())
        path = self.path.split("?", 1)[0]
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.command} {path} {status} "
                         f"{(time.monotonic() - started) * 1000:.1f}ms {q}\n")

    def _send(self, status: int, body, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(memoryview(body).nbytes))
        self.send_header("Keep-Alive", f"timeout={self.timeout}")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and len(body):
            self.wfile.write(body)

    def _send_text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), [("Content-Type", "text/html; charset=UTF-8")])

    def do_HEAD(self):
        self.do_GET()

    def do_OPTIONS(self):
        self._send(204, b"", [("Access-Control-Allow-Origin", "*"),
                              ("Access-Control-Allow-Methods", "POST, GET, OPTIONS"),
                              ("Access-Control-Allow-Headers",
                               "origin, x-requested-with, x-clickhouse-format, "
                               "x-clickhouse-user, x-clickhouse-key, Authorization, "
                               "content-type")])

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path in ("/ping", "/replicas_status") or (
                path == "/" and self.command in ("GET", "HEAD")
                and "query" not in dict(parse_qsl(url.query))):
            RequestBody(self).drain(_BODY_DRAIN_LIMIT)
            self._send_text(200, "Ok.\n")
            return
        if path != "/":
            if not RequestBody(self).drain(_BODY_DRAIN_LIMIT):
                self.close_connection = True
            self._send_text(404, f"There is no handle {path}\n\nUse / or /ping for health checks.\n"
                                 "Send queries with POST / or GET /?query=...\n")
            return
        self._handle_query()

    # --- queries ----------------------------------------------------------

    def _handle_query(self) -> None:
        with self.server.in_flight():  # type: ignore[attr-defined]
            self._handle_query_inner()

    def _handle_query_inner(self) -> None:
        started = time.monotonic()
        body = RequestBody(self)
        log_query = ""
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        status = 500
        try:
            ctype = self.headers.get("Content-Type", "")
            if self.command == "POST" and ctype.lower().startswith("multipart/form-data"):
                # The crate sends `query` and `param_*` as form fields when it binds
                # server-side parameters.
                raw = b"".join(body.chunks(self.headers.get("Content-Encoding", ""), False))
                params.update(parse_multipart(raw, ctype))
            spec = self._request_spec(params)
            url_query = params.get("query", "")
            log_query = url_query
            comp_params = (self.headers.get("Content-Encoding", ""),
                           _flag(params, "decompress"),
                           not _flag(params, "http_native_compression_"
                                             "disable_checksumming_on_decompress"))
            with self.server.pool.lease() as lease:  # type: ignore[attr-defined]
                try:
                    self._apply_session_state(lease, spec)
                    out, fmt, summary, log_query = self._run(lease, spec, url_query, body, comp_params)
                except BaseException:
                    lease.dirty = True  # never reuse a connection after a failure
                    raise
            status = 200
            self._send_ok(spec, out, fmt, summary)
        except CHError as e:
            status = e.http_status
            self._send_error(e, body, params)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # client went away or stalled mid-body
            status = 499
        except Exception as e:  # programming error or unexpected engine failure
            err = CHError.from_engine(e)
            status = err.http_status
            self._send_error(err, body, params)
        finally:
            self._log(status, started, log_query)

    def _request_spec(self, params: dict[str, str]) -> RequestSpec:
        spec = RequestSpec(method=self.command, params=params)
        spec.database = params.get("database") or self.headers.get("X-ClickHouse-Database", "")
        spec.default_format = (params.get("default_format")
                               or self.headers.get("X-ClickHouse-Format") or "TabSeparated")
        spec.query_id = params.get("query_id") or str(uuid.uuid4())
        for name, value in params.items():
            if name.startswith("param_"):
                spec.query_params[name[6:]] = value
            elif name not in _HTTP_ONLY_PARAMS:
                if not _SETTING_NAME_RE.match(name):
                    raise CHError.make(115, f"Unknown setting '{name}'")
                spec.settings[name] = value
        # Like ClickHouse: GET requests are readonly=2 unless the URL says otherwise.
        if "readonly" in params:
            spec.settings["readonly"] = params["readonly"]
        elif self.command in ("GET", "HEAD"):
            spec.settings["readonly"] = "2"
        return spec

    @staticmethod
    def _apply_session_state(lease: Lease, spec: RequestSpec) -> None:
        """Apply per-request database/settings on the leased connection; the lease is
        marked dirty so the connection is replaced afterwards (no leaking)."""
        conn = lease.conn
        if spec.database and spec.database != "default":
            lease.dirty = True
            conn.query(f"USE {quote_ident(spec.database)}", "TabSeparated")
        if spec.settings:
            lease.dirty = True
            # `readonly` must come last: with readonly=1 no later SET would be allowed.
            items = sorted(spec.settings.items(), key=lambda kv: kv[0] == "readonly")
            conn.query("SET " + ", ".join(f"{k} = {quote_string(v)}" for k, v in items),
                       "TabSeparated")

    def _run(self, lease: Lease, spec: RequestSpec, url_query: str, body: RequestBody,
             comp_params: tuple[str, bool, bool]):
        """Execute the request. Returns (output bytes, format, summary, text for log)."""
        def body_chunks() -> Iterator[bytes]:
            return body.chunks(*comp_params)

        if url_query:
            head = url_query.encode("utf-8") + b"\n"
            shape = analyze_query(head)
            if shape.fmt and shape.insert_head_end >= 0 and not shape.insert_select:
                # Streaming INSERT: head from the URL, data from the body.
                def data() -> Iterator[bytes]:
                    if shape.data_start < len(head):
                        yield head[shape.data_start:]
                    yield from body_chunks()
                return self._insert(lease, spec, head, shape, data()) + (url_query,)
            text = head + b"".join(body_chunks())
        else:
            text = head = b"".join(body_chunks())
            shape = None
        if not text.strip():
            raise CHError.make(62, "Empty query")
        if shape is None or len(text) > len(head):
            shape = analyze_query(text)
        log_query = text[:400].decode("utf-8", "replace")
        if shape.fmt and shape.insert_head_end >= 0:
            if shape.insert_select:
                raise CHError.make(48, "INSERT ... SELECT ... FORMAT (input() with inline data) "
                                       "is not supported by this development server")
            return self._insert(lease, spec, text, shape, iter((text[shape.data_start:],))) + (
                text[:shape.insert_head_end].decode("utf-8", "replace"),)

        if shape.session_changing:
            lease.dirty = True
        if spec.default_format.lower() in _PY_ONLY_FORMATS:
            raise CHError.make(73, f"Unknown format {spec.default_format}")
        fmt = shape.fmt or spec.default_format
        try:
            sql = text.decode("utf-8")
        except UnicodeDecodeError:
            raise CHError.make(36, "Query text is not valid UTF-8") from None
        try:
            res = lease.conn.query(sql, spec.default_format, params=spec.query_params)
        except Exception as e:
            raise CHError.from_engine(e) from None
        out = res.bytes()
        summary = {
            "read_rows": res.storage_rows_read(), "read_bytes": res.storage_bytes_read(),
            "written_rows": res.rows_written(), "written_bytes": res.bytes_written(),
            "total_rows_to_read": res.storage_rows_read(),
            "result_rows": res.rows_read(), "result_bytes": res.bytes_read(),
            "elapsed_ns": int(res.elapsed() * 1e9),
        }
        return out, fmt, summary, log_query

    @staticmethod
    def _insert(lease: Lease, spec: RequestSpec, text: bytes, shape: QueryShape,
                data: Iterator[bytes]):
        """Stream `data` into `INSERT <head>` with chDB's send_insert()."""
        head = text[:shape.insert_head_end].decode("utf-8", "replace").rstrip()
        conn = lease.conn
        assignments = [f"param_{k} = {quote_string(v)}" for k, v in spec.query_params.items()
                       if _SETTING_NAME_RE.match(k)]
        if assignments:  # send_insert() takes no params: make them session params
            lease.dirty = True
            try:
                conn.query("SET " + ", ".join(assignments), "TabSeparated")
            except Exception as e:
                raise CHError.from_engine(e) from None
        try:
            inserter = conn.send_insert(head, shape.fmt)
        except Exception as e:
            raise CHError.from_engine(e) from None
        try:
            pending: list[bytes] = []
            pending_size = 0
            for chunk in data:  # coalesce small chunks into ~1 MiB appends
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= _READ_SIZE:
                    inserter.append(b"".join(pending))
                    pending, pending_size = [], 0
            if pending_size:
                inserter.append(b"".join(pending))
            result = inserter.finish()
        except BaseException as e:
            try:
                inserter.cancel()
            except Exception:
                pass
            if isinstance(e, (CHError, ConnectionError)):
                raise
            if isinstance(e, Exception):
                raise CHError.from_engine(e) from None
            raise
        summary = {"read_rows": 0, "read_bytes": 0,
                   "written_rows": result.rows_written, "written_bytes": result.bytes_written,
                   "total_rows_to_read": 0, "result_rows": result.rows_written,
                   "result_bytes": result.bytes_written,
                   "elapsed_ns": int(result.elapsed * 1e9)}
        return b"", shape.fmt, summary

    # --- responses --------------------------------------------------------

    def _common_headers(self, spec_or_params) -> list[tuple[str, str]]:
        params = spec_or_params.params if isinstance(spec_or_params, RequestSpec) else spec_or_params
        headers = [("X-ClickHouse-Server-Display-Name", self.display_name),
                   ("X-ClickHouse-Timezone", self.server_timezone)]
        if _flag(params, "add_http_cors_header"):
            headers.append(("Access-Control-Allow-Origin", "*"))
        return headers

    def _send_ok(self, spec: RequestSpec, out, fmt: str, summary: dict) -> None:
        params = spec.params
        headers = self._common_headers(spec)
        headers += [("Content-Type", content_type_for(fmt)),
                    ("X-ClickHouse-Query-Id", spec.query_id),
                    ("X-ClickHouse-Format", fmt),
                    ("X-ClickHouse-Summary",
                     json.dumps({k: str(v) for k, v in summary.items()}, separators=(",", ":")))]
        if _flag(params, "compress"):
            out = b"".join(native_compress(out))
        enabled = _flag(params, "enable_http_compression", self.default_http_compression)
        encoding = pick_response_encoding(self.headers.get("Accept-Encoding", "")) if enabled else None
        if encoding:
            try:
                level = int(params.get("http_zlib_compression_level", "3"))
            except ValueError:
                level = 3
            out = encode_body(out, encoding, min(max(level, 1), 9))
            headers.append(("Content-Encoding", encoding))
        self._send(200, out, headers)

    def _send_error(self, err: CHError, body: RequestBody, params: dict) -> None:
        if not body.drain(_BODY_DRAIN_LIMIT):
            self.close_connection = True
        headers = self._common_headers(params)
        headers += [("Content-Type", "text/plain; charset=UTF-8"),
                    ("X-ClickHouse-Exception-Code", str(err.code))]
        headers.append(("X-ClickHouse-Query-Id", params.get("query_id") or str(uuid.uuid4())))
        try:
            self._send(err.http_status, err.body(), headers)
        except OSError:
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, pool: EnginePool):
        self.pool = pool
        self._active = 0
        self._active_cv = threading.Condition()
        super().__init__(addr, handler)

    @contextmanager
    def in_flight(self):
        """Count requests being processed so shutdown can let them finish."""
        with self._active_cv:
            self._active += 1
        try:
            yield
        finally:
            with self._active_cv:
                self._active -= 1
                self._active_cv.notify_all()

    def wait_idle(self, timeout: float) -> int:
        """Wait until no request is being processed; returns how many still are."""
        with self._active_cv:
            self._active_cv.wait_for(lambda: self._active == 0, timeout)
            return self._active

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # client went away; nothing to report
        super().handle_error(request, client_address)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="persistent chDB data directory")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--pool", type=int, default=4,
                    help="chDB connections = max queries running in parallel (default 4)")
    args = ap.parse_args(argv)

    pool = EnginePool(args.data, max(1, args.pool))
    ClickHouseHandler.server_timezone = pool.scalar("SELECT timezone()")
    ClickHouseHandler.default_http_compression = \
        pool.scalar("SELECT getSetting('enable_http_compression')") in ("1", "true")
    server = Server((args.host, args.port), ClickHouseHandler, pool)

    def on_signal(signum, _frame):
        sys.stderr.write(f"clickhouse_http: signal {signum}, shutting down\n")
        threading.Thread(target=server.shutdown, daemon=True).start()

    # Installed after chDB started so the engine cannot override our handlers.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sys.stderr.write(f"clickhouse_http: listening on http://{args.host}:{args.port} "
                     f"(engine {ENGINE_VERSION}, data {args.data}, pool {args.pool})\n")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        server.wait_idle(timeout=30)
        busy = pool.close(timeout=5)
        sys.stderr.write("clickhouse_http: stopped" +
                         (f" ({busy} queries still running)" if busy else "") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
