"""A small dependency-free reader/writer for WebDataset tar shards.

A shard is a plain (uncompressed) tar file. A *sample* is a run of consecutive members sharing a
*key*: ``{key}.{ext}``, where the key is everything before the first dot of the file name (so keys
must not contain dots) and ``ext`` may itself contain dots (``frames.npy``). Values are encoded by
extension: ``*.npy`` as numpy ``.npy`` (no pickles), ``*.json`` as UTF-8 JSON, ``*.txt`` as UTF-8;
anything else is raw bytes. This is the layout the ``webdataset`` package reads.

Written shards are byte-reproducible: member metadata (mtime, owner, mode) is fixed and JSON is
written with sorted keys. Because the tar is uncompressed, every member's data sits at a fixed byte
offset; :class:`ShardWriter` records those offsets (``index``) so readers can later fetch single
frames of a stored array with one seek (:func:`read_npy_rows`) instead of decoding the whole sample.

Object storage: every read goes through :func:`open_url`, which looks up an *opener* (a function
``url -> binary stream``) by URL scheme. Local paths and ``file://`` work out of the box; plug in
e.g. S3 with ``register_opener("s3", lambda url: fsspec.open(url, "rb").open())``. Streaming
(:func:`iter_shard`) works with non-seekable streams; random access needs a seekable one.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, BinaryIO

import numpy as np

from pcavs.errors import UserError

__all__ = [
    "ShardError",
    "Opener",
    "register_opener",
    "open_url",
    "encode_value",
    "decode_value",
    "split_member_name",
    "ShardWriter",
    "iter_shard",
    "scan_shard",
    "NpyMember",
    "read_npy_header",
    "read_npy_rows",
    "read_member",
]

Opener = Callable[[str], BinaryIO]
MemberIndex = dict[str, dict[str, tuple[int, int]]]  # key -> ext -> (data offset, size)

_OPENERS: dict[str, Opener] = {}
_URL_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class ShardError(UserError, ValueError):
    """A shard that cannot be written or read; the message names the file and what to do."""


# ------------------------------------------------------------------------------------ openers
def _open_local(url: str) -> BinaryIO:
    path = url[len("file://") :] if url.startswith("file://") else url
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller owns the stream
    except FileNotFoundError:
        raise ShardError(f"{path}: shard not found; check the dataset folder or rerun `pcavs preprocess`") from None


def register_opener(scheme: str, opener: Opener) -> None:
    """Route URLs ``{scheme}://...`` to ``opener`` (a function returning a readable binary stream)."""
    _OPENERS[scheme.lower()] = opener


def open_url(url: str | os.PathLike[str]) -> BinaryIO:
    """Open a local path or URL for binary reading through the registered openers."""
    text = os.fspath(url)
    m = _URL_SCHEME.match(text)
    scheme = m.group(1).lower() if m else "file"
    if scheme == "file":
        return _OPENERS.get("file", _open_local)(text)
    if scheme not in _OPENERS:
        raise ShardError(
            f"{text}: no opener for '{scheme}://' URLs; call pcavs.data.shards.register_opener({scheme!r}, fn) "
            "with a function returning a binary stream"
        )
    return _OPENERS[scheme](text)


# ------------------------------------------------------------------------------------ codecs
def encode_value(ext: str, value: Any) -> bytes:
    """Bytes stored for ``value`` under extension ``ext`` (see the module docstring)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    last = ext.rsplit(".", 1)[-1]
    if last == "npy":
        buf = io.BytesIO()
        np.save(buf, np.asarray(value), allow_pickle=False)
        return buf.getvalue()
    if last == "json":
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ShardError(f"cannot encode a {type(value).__name__} as '.{ext}'; pass bytes, or use a .npy/.json extension")


def decode_value(ext: str, data: bytes) -> Any:
    """Inverse of :func:`encode_value` for ``.npy``, ``.json`` and ``.txt``; other extensions stay bytes."""
    last = ext.rsplit(".", 1)[-1]
    if last == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    if last == "json":
        return json.loads(data.decode("utf-8"))
    if last == "txt":
        return data.decode("utf-8")
    return data


def split_member_name(name: str) -> tuple[str, str]:
    """``"dir/key.frames.npy" -> ("dir/key", "frames.npy")`` (the WebDataset rule: first dot of the basename)."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not dot or not stem:
        raise ShardError(f"tar member {name!r} is not named key.ext; this is not a WebDataset shard")
    return (f"{folder}/{stem}" if folder else stem), ext


# ------------------------------------------------------------------------------------ writing
class ShardWriter:
    """Write samples to a tar shard: ``with ShardWriter(path) as w: w.add(key, {"frames.npy": arr})``.

    ``target`` is a path (created/overwritten) or a writable binary stream positioned at 0. After each
    :meth:`add`, :attr:`index` maps ``key -> {ext: (data offset, size)}`` within the tar.
    """

    def __init__(self, target: str | os.PathLike[str] | IO[bytes]) -> None:
        if isinstance(target, str | os.PathLike):
            self.name = os.fspath(target)
            try:
                self._file: IO[bytes] = open(self.name, "wb")  # noqa: SIM115 - closed in close()
            except OSError as e:
                raise ShardError(f"{self.name}: cannot create shard ({e}); check the folder and free space") from None
            self._own = True
        else:
            self.name, self._file, self._own = getattr(target, "name", "<stream>"), target, False
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)
        self.index: MemberIndex = {}
        self._closed = False

    def add(self, key: str, fields: Mapping[str, Any]) -> None:
        """Append one sample; ``fields`` maps extensions to bytes, arrays (``.npy``) or JSON values."""
        if self._closed:
            raise ShardError(f"{self.name}: shard writer is closed")
        if not key or "." in key.rpartition("/")[2] or key in self.index:
            raise ShardError(f"{self.name}: bad or duplicate sample key {key!r}; keys must be unique and have no dots")
        if not fields:
            raise ShardError(f"{self.name}: sample {key!r} has no fields")
        members: dict[str, tuple[int, int]] = {}
        for ext, value in fields.items():
            if not ext or ext.startswith(".") or "/" in ext:
                raise ShardError(f"{self.name}: bad extension {ext!r} for sample {key!r}; use e.g. 'frames.npy'")
            data = encode_value(ext, value)
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(data)
            # Fixed metadata makes the shard byte-identical whenever the content is.
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
            self._tar.addfile(info, io.BytesIO(data))
            # The data ends at the (block-padded) current offset; headers may be several blocks (PAX).
            padded = -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            members[ext] = (self._tar.offset - padded, len(data))
        self.index[key] = members

    def close(self) -> None:
        """Finish the tar (end-of-archive blocks) and close the file if this writer opened it."""
        if self._closed:
            return
        self._closed = True
        self._tar.close()
        if self._own:
            self._file.flush()
            os.fsync(self._file.fileno())  # the caller renames the file next: make the rename durable
            self._file.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            self._tar.close()
            if self._own:
                self._file.close()


# ------------------------------------------------------------------------------------ reading
def _open_tar(stream: BinaryIO, url: str, mode: str) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=stream, mode=mode)
    except tarfile.TarError as e:
        raise ShardError(f"{url}: not a readable tar shard ({e}); it is truncated or corrupt: rerun preprocessing") \
            from None


def iter_shard(url: str | os.PathLike[str], decode: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(key, {ext: value})`` per sample, streaming (works on non-seekable streams).

    Consecutive members with the same key form one sample; with ``decode`` ``.npy``/``.json``/``.txt``
    values are decoded (see :func:`decode_value`), otherwise all values are bytes.
    """
    name = os.fspath(url)
    with open_url(name) as stream, _open_tar(stream, name, "r|") as tar:
        key: str | None = None
        sample: dict[str, Any] = {}
        try:
            for info in tar:
                if not info.isfile():
                    continue
                k, ext = split_member_name(info.name)
                if k != key:
                    if key is not None:
                        yield key, sample
                    key, sample = k, {}
                if ext in sample:
                    raise ShardError(f"{name}: sample {k!r} has two '{ext}' members; the shard is malformed")
                f = tar.extractfile(info)
                data = f.read() if f is not None else b""
                sample[ext] = decode_value(ext, data) if decode else data
        except tarfile.TarError as e:
            raise ShardError(f"{name}: shard is truncated or corrupt ({e}); rerun preprocessing") from None
        if key is not None:
            yield key, sample


def scan_shard(url: str | os.PathLike[str]) -> MemberIndex:
    """Member offsets of a shard without reading the data (headers only; needs a seekable stream)."""
    name = os.fspath(url)
    index: MemberIndex = {}
    with open_url(name) as stream, _open_tar(stream, name, "r:") as tar:
        for info in tar.getmembers():
            if info.isfile():
                k, ext = split_member_name(info.name)
                index.setdefault(k, {})[ext] = (info.offset_data, info.size)
    return index


def read_member(stream: BinaryIO, offset: int, size: int) -> bytes:
    """The ``size`` bytes of a member's data at ``offset`` (from an index)."""
    stream.seek(offset)
    data = stream.read(size)
    if len(data) != size:
        name = getattr(stream, "name", "shard")
        raise ShardError(f"{name}: member at byte {offset} is cut short; the shard is truncated: rerun preprocessing")
    return data


class NpyMember:
    """Header of a ``.npy`` member: dtype, shape and where its C-order data starts."""

    __slots__ = ("dtype", "shape", "data_offset", "row_bytes")

    def __init__(self, dtype: np.dtype, shape: tuple[int, ...], data_offset: int) -> None:
        self.dtype, self.shape, self.data_offset = dtype, shape, data_offset
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize  # bytes per first-axis row


def read_npy_header(stream: BinaryIO, offset: int) -> NpyMember:
    """Parse the ``.npy`` header of a member whose data starts at ``offset``."""
    stream.seek(offset)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except ValueError as e:
        raise ShardError(f"{getattr(stream, 'name', 'shard')}: bad .npy member at byte {offset} ({e})") from None
    if fortran or dtype.hasobject or not shape:
        raise ShardError(f"{getattr(stream, 'name', 'shard')}: .npy member at byte {offset} is not a C-order array")
    return NpyMember(dtype, tuple(shape), stream.tell())


def read_npy_rows(stream: BinaryIO, header: NpyMember, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` (clipped to the array) of a ``.npy`` member along its first axis."""
    start, stop = max(0, start), min(stop, header.shape[0])
    n = max(0, stop - start)
    stream.seek(header.data_offset + start * header.row_bytes)
    data = stream.read(n * header.row_bytes)
    if len(data) != n * header.row_bytes:
        raise ShardError(f"{getattr(stream, 'name', 'shard')}: array data is cut short; rerun preprocessing")
    return np.frombuffer(data, dtype=header.dtype).reshape((n, *header.shape[1:]))
