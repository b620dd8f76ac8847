"""Land generated videos in object storage: streamed, verified, atomic and idempotent.

A video task's file URLs are pre-signed URLs on a file host (not the API host) that expire about 24
hours after generation, so copying the file somewhere durable is what keeps a generation. This
package does that copy for :class:`~airflow_provider_videogen.operators.videogen.FetchVideoOperator`,
one concern a module:

=================  ===========================================================================
``landing``        which files of a task land where (:class:`Landing`), and what landed (:class:`LandedFiles`)
``destination``    which destinations are accepted, and which file a destination names
``downloader``     :class:`VideoDownloader`: one file, from its URL to its destination
``remote``         the file host: requests that never leak the key, answers, advertised checksums
``existing``       a destination that already holds the file (idempotent retries)
``transfer``       one copy across broken attempts: resume with ``Range`` or restart
``staging``        the hidden temporary file, its atomic publication, its removal on every failure
``pipeline``       each chunk hashed and written by helper threads while the next is read
``content``        that the bytes are a whole video or image of their kind
``record``         the integrity record ``<name>.videogen.json`` beside each landed file
``progress``       progress lines (bytes, percent, rate)
=================  ===========================================================================
"""

from __future__ import annotations

from airflow_provider_videogen.download._types import FileKind, StoredFile
from airflow_provider_videogen.download.destination import (
    check_destination,
    check_file_url,
    last_frame_path,
    resolve_destination,
    storage_uri,
)
from airflow_provider_videogen.download.downloader import DEFAULT_CHUNK_SIZE, VideoDownloader
from airflow_provider_videogen.download.landing import LandedFiles, Landing, require_succeeded
from airflow_provider_videogen.download.record import RECORD_SUFFIX
from airflow_provider_videogen.download.remote import advertised_sha256
from airflow_provider_videogen.download.staging import remove_abandoned_temporaries_in

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "RECORD_SUFFIX",
    "FileKind",
    "LandedFiles",
    "Landing",
    "StoredFile",
    "VideoDownloader",
    "advertised_sha256",
    "check_destination",
    "check_file_url",
    "last_frame_path",
    "remove_abandoned_temporaries_in",
    "require_succeeded",
    "resolve_destination",
    "storage_uri",
]
