"""Destination rules: which destinations are accepted, which file a destination names, and where the last frame goes."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

from airflow_provider_videogen.exceptions import VideoDestinationError, VideoDownloadError
from airflow_provider_videogen.transport import redact_url

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


def last_frame_path(video_path: ObjectStoragePath) -> ObjectStoragePath:
    """Return ``<name>.png`` beside the video (``x.mp4`` -> ``x.png``)."""
    frame = video_path.with_name(f"{video_path.stem or video_path.name}.png")
    if frame.path == video_path.path:
        raise VideoDownloadError(
            f"The video destination {video_path.name!r} ends in .png, where its last frame would go: "
            "name the video file .mp4."
        )
    return frame


def check_file_url(url: str, *, video_task_id: str | None = None) -> str:
    """Return the URL if it is an ``http(s)`` URL with a host, else raise ``VideoDownloadError``.

    Only the web is followed: a ``file:``, ``ftp:`` or other URL from a compromised or confused
    service must not make the worker read local files or reach other protocols.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise VideoDownloadError(
            f"Refusing to download {redact_url(url)!r}: only http and https URLs are followed.",
            video_task_id=video_task_id,
        )
    return url


def storage_uri(path: ObjectStoragePath) -> str:
    """Return a plain URI for a path (``s3://bucket/key``, ``file:///dir/name``), without the connection id."""
    protocol = path.protocol or "file"
    if protocol in ("file", "local"):
        return "file://" + path.path
    return f"{protocol}://{path.path}"


def resolve_destination(
    destination: str | ObjectStoragePath,
    *,
    file_name: str,
    conn_id: str | None = None,
) -> ObjectStoragePath:
    """Return the file path a destination names.

    A string ending in ``/`` (and an ``ObjectStoragePath`` that is an existing folder) is a folder:
    the file is ``file_name`` inside it. Anything else is the file's own path.

    :param destination: a URL such as ``s3://bucket/videos/`` or ``file:///data/x.mp4``, or an absolute
        path; anything relative or malformed is refused (see :func:`check_destination`).
    :param file_name: the name used inside a folder destination.
    :param conn_id: the storage connection; overrides one the path already carries.
    """
    from airflow.sdk import ObjectStoragePath

    if isinstance(destination, ObjectStoragePath):
        conn_id = conn_id or _conn_id_of(destination)
        check_destination(storage_uri(destination))
        path = storage_path(storage_uri(destination), conn_id)
        text = storage_uri(path) + ("/" if path.is_dir() else "")
    else:
        text = str(destination).strip()
        if not text:
            raise VideoDestinationError(f"The destination is empty: pass {_DESTINATION_FORMS}.")
        check_destination(text)
        path = storage_path(text, conn_id)
    if text.endswith("/"):
        # Joined as text: joining paths warns on some Airflow versions.
        return storage_path(text + file_name, conn_id)
    if not path.name:
        raise VideoDestinationError(f"The destination {destination!s} names no file; end a folder with '/'.")
    return path


_DESTINATION_FORMS = (
    "an absolute URL such as s3://bucket/videos/ or file:///data/videos/, or an absolute path such as "
    "/data/videos/ (a folder ends in '/'; the file is then named after the video task)"
)
_LOCAL_PROTOCOLS = ("file", "local")


def check_destination(destination: str) -> None:
    """Raise :class:`VideoDestinationError` unless a file can land at ``destination`` where it says.

    Accepted: an absolute local path (``/data/videos/``), a local file URL (``file:///data/videos/``,
    also ``file:/data/videos/`` and ``local://``), and ``<protocol>://<bucket>/<key>`` of a filesystem
    Airflow has installed (``s3://bucket/videos/``). Refused, before anything is downloaded: relative
    paths and file URLs with a host (``videos/``, ``../up/``, ``~/v/``, ``file://videos/``, which
    would land under the worker's current folder), ``.`` and ``..`` segments, a query, a fragment or
    a control character, a URL with no bucket or only a bucket, a password in the URL (the storage
    connection holds credentials), web addresses and unknown protocols.
    """
    shown = destination
    try:
        parts = urlsplit(destination)
        if parts.password is not None:
            # Never echo a credential: show the URL with the password masked.
            shown = destination.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:  # e.g. an unbalanced '[' in the host
        parts = None
    problem = _destination_problem(destination, parts)
    if problem is not None:
        raise VideoDestinationError(f"The destination {shown!r} {problem}: pass {_DESTINATION_FORMS}.")


def _destination_problem(destination: str, parts: SplitResult | None) -> str | None:
    """Say what is wrong with a destination (completing "The destination ... "), or ``None`` if nothing is."""
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in destination):
        return "contains a control character"
    if parts is None:
        return "is not a well-formed URL"
    protocol = parts.scheme.lower() if not destination.startswith("/") else ""
    if protocol and (parts.query or destination.endswith("?")):
        return "has a query ('?...'), which no storage path takes"
    if protocol and (parts.fragment or destination.endswith("#")):
        return "has a fragment ('#...'), which no storage path takes"
    if protocol in ("http", "https"):
        return "is a web address: files are downloaded from the web, and land in storage"
    if protocol and not _has_filesystem(protocol):
        return f"uses {protocol}:, for which no installed filesystem is registered in Airflow"
    if parts.password is not None:
        return "holds a password: put the storage credentials in a connection and pass its id as dest_conn_id"
    path = parts.path if protocol else destination
    problem = _place_problem(destination, parts, protocol, path)
    if problem is not None:
        return problem
    segments = path.split("/")
    return next((f"has a {dots!r} segment: name the folder itself" for dots in ("..", ".") if dots in segments), None)


def _place_problem(destination: str, parts: SplitResult, protocol: str, path: str) -> str | None:
    """Say why a destination names no place a file can land (relative, a host in a file URL, no bucket), if so."""
    if protocol in ("", *_LOCAL_PROTOCOLS):
        if parts.netloc and protocol:
            return (
                "names a host, where a local file URL takes three slashes (file:///absolute/path); "
                "it would land under the worker's current folder"
            )
        if not path.startswith("/"):
            return "is a relative path: it would land under the worker's current folder"
    elif not parts.netloc:
        return f"names no bucket ({protocol}://bucket/folder/)"
    elif path in ("", "/") and not destination.endswith("/"):
        return f"names only the bucket {parts.netloc!r}: add the file or folder in it"
    return None


def storage_path(url: str, conn_id: str | None = None) -> ObjectStoragePath:
    """Return Airflow's ``ObjectStoragePath`` for a checked destination ``url``, with the storage connection.

    Airflow finds a path's filesystem in a registry that, the first time a process asks, imports the
    filesystem module of every installed provider (s3fs, gcsfs and their clients): about half a
    second of CPU in every task process, though a local path needs none of them. A local path's
    store is therefore attached here with the filesystem the registry has built in for it (fsspec's
    ``LocalFileSystem``); a store already attached under that name (by the DAG, say) is kept.
    """
    from airflow.sdk import ObjectStoragePath

    protocol = "file" if url.startswith("/") else urlsplit(url).scheme.lower()
    if protocol in _LOCAL_PROTOCOLS:
        from airflow.sdk.io import attach
        from fsspec.implementations.local import LocalFileSystem

        attach(protocol, conn_id, fs=LocalFileSystem())
    return ObjectStoragePath(url, conn_id=conn_id)


def _has_filesystem(protocol: str) -> bool:
    """Whether Airflow's object storage has a filesystem for ``protocol`` (built in, or from a provider)."""
    if protocol in _LOCAL_PROTOCOLS:
        return True  # built in: no need to load every provider's filesystem to know
    from airflow.sdk.io.fs import has_fs

    return has_fs(protocol)


def _conn_id_of(path: ObjectStoragePath) -> str | None:
    # Airflow 3.2+ has a ``conn_id`` property; 3.1 keeps it in the storage options.
    conn_id = getattr(path, "conn_id", None) or path.storage_options.get("conn_id")
    return str(conn_id) if conn_id else None
