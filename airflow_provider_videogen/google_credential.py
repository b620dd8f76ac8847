"""Credentials borrowed from an Airflow ``google_cloud_platform`` connection: an OAuth token, no key of our own.

A style whose service is on Google Cloud (``vertex_veo``) makes one of these instead of a
:class:`~airflow_provider_videogen.credential.Credential`: it has the same face (the client, the
answer reader and the downloader ask it the same questions), but its "key" is an access token of
the Google connection's credentials (a key file, workload identity, impersonation...), made by
Airflow's Google provider (``GoogleBaseHook``) with the scope the connection names
(``cloud-platform`` by default), and sent as ``Authorization: Bearer`` to the API's own origin only.

Reading the Airflow connection is a call to the API server and refreshing a token is an HTTP call
to Google's token endpoint: the sync path (a worker) does both in place; the async path (the
triggerer) reads the connection with Airflow's async API and builds and refreshes the credentials
in a thread (:meth:`GoogleCredential.aresolve`, :meth:`GoogleCredential.asign`), so nothing blocks
the event loop. Every call of one wait uses the same credentials, refreshed when they expire.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from airflow_provider_videogen.credential import BorrowedCredential, Credential, no_request_headers, origin_of

__all__ = ["DEFAULT_GCP_CONN_ID", "GoogleCredential"]

#: The Google connection borrowed when the ``videogen`` connection names none (the Google provider's default).
DEFAULT_GCP_CONN_ID = "google_cloud_default"


class GoogleCredential(BorrowedCredential):
    """An Airflow Google connection's credentials, sending a fresh access token to one origin as Bearer.

    :param gcp_conn_id: the Airflow ``google_cloud_platform`` connection to borrow (a missing one:
        Google's application default credentials, as the Google provider falls back to).
    :param base_url: the API's base URL: requests to any other origin never get the token.
    """

    def __init__(self, gcp_conn_id: str, base_url: str) -> None:
        super().__init__(base_url, frozenset({"authorization"}))
        self.gcp_conn_id = gcp_conn_id
        self._credentials: Any = None
        self._lock = threading.Lock()
        self._tokens: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"<Google credential of connection {self.gcp_conn_id!r} for {self.origin}>"

    # ---- resolving and signing ----

    def resolve(self) -> Any:
        """Return the connection's ``google.auth`` credentials, built once (sync: reads the connection)."""
        if self._credentials is None:
            from airflow.sdk import BaseHook

            self._set(_google_credentials(_google_connection(BaseHook.get_connection, self.gcp_conn_id), self))
        return self._credentials

    async def aresolve(self) -> Any:
        """Return the credentials without blocking the event loop (see the module's docstring)."""
        if self._credentials is None:
            from airflow.sdk import BaseHook

            conn = await _agoogle_connection(BaseHook.aget_connection, self.gcp_conn_id)
            # Building them may read a key file or a secret: in a thread.
            self._set(await asyncio.to_thread(_google_credentials, conn, self))
        return self._credentials

    def sign(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        """Return ``headers`` with ``Authorization: Bearer <token>`` for a request to the API's origin.

        A request to any other origin gets ``headers`` as they are. An expired token is refreshed
        first (an HTTP call to Google's token endpoint: blocking).
        """
        if origin_of(url) != self.origin:
            return dict(headers)
        return {**headers, "Authorization": f"Bearer {self._fresh_token(self.resolve())}"}

    async def asign(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        """Return the headers as :meth:`sign` does, refreshing an expired token in a thread."""
        if origin_of(url) != self.origin:
            return dict(headers)
        credentials = await self.aresolve()
        if credentials.valid:
            token = self._noted(credentials.token)
        else:
            token = await asyncio.to_thread(self._fresh_token, credentials)
        return {**headers, "Authorization": f"Bearer {token}"}

    def _fresh_token(self, credentials: Any) -> str:
        """Return a valid token of ``credentials``, refreshing them (once, under a lock) when they are not."""
        with self._lock:
            if not credentials.valid:
                import google.auth.exceptions
                from google.auth.transport.requests import Request

                try:
                    credentials.refresh(Request())
                except (google.auth.exceptions.GoogleAuthError, OSError) as error:
                    raise _refresh_error(self, error) from None
            token = credentials.token
        if not token:
            raise _refresh_error(self, None)
        return self._noted(token)

    def _set(self, credentials: Any) -> None:
        with self._lock:
            if self._credentials is None:
                self._credentials = credentials

    def _noted(self, token: str) -> str:
        """Mask ``token`` from now on, in the provider's texts and in Airflow's own log masking; return it."""
        if token not in self._tokens:
            _mask_in_airflow_logs(token)
            self._tokens = self._tokens | {token}
            self._maskers = (*self._maskers, Credential(token, self.origin, {}, no_request_headers))
        return token


def _mask_in_airflow_logs(secret: str) -> None:
    """Have Airflow's own log masking hide ``secret`` too."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - an Airflow without it: the provider's own masking still applies
        return
    mask_secret(secret)


def _google_connection(get_connection: Any, gcp_conn_id: str) -> Any:
    """Return the Airflow Google connection, or ``None`` when it does not exist."""
    from airflow.exceptions import AirflowNotFoundException

    try:
        return get_connection(gcp_conn_id)
    except AirflowNotFoundException:
        return None  # as the Google provider's clients: the application default credentials


async def _agoogle_connection(aget_connection: Any, gcp_conn_id: str) -> Any:
    from airflow.exceptions import AirflowNotFoundException

    try:
        return await aget_connection(gcp_conn_id)
    except AirflowNotFoundException:
        return None


def _google_credentials(conn: Any, credential: GoogleCredential) -> Any:
    """Build the Google provider's credentials of ``conn`` (key file, key dict, impersonation, ADC...).

    ``GoogleBaseHook`` reads its connection itself, synchronously; it is handed the one already read
    (in the triggerer, through the async API), so it never reads it again.
    """
    import google.auth.exceptions
    from airflow.models import Connection
    from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

    read = conn if conn is not None else Connection(conn_id=credential.gcp_conn_id, conn_type="google_cloud_platform")

    class _ReadConnectionHook(GoogleBaseHook):
        def get_connection(self, conn_id: str) -> Any:  # type: ignore[override]
            return read

    try:
        return _ReadConnectionHook(gcp_conn_id=credential.gcp_conn_id).get_credentials()
    except (google.auth.exceptions.GoogleAuthError, ValueError, OSError) as error:
        from airflow_provider_videogen.exceptions import VideoGenConfigurationError

        raise VideoGenConfigurationError(
            f"Could not read Google credentials from the google_cloud_platform connection "
            f"{credential.gcp_conn_id!r} (the videogen connection's gcp_conn_id extra): "
            f"{type(error).__name__}: {credential.mask(str(error))[:300]}. Give that connection a key file "
            "(keyfile_dict or key_path) or run where application default credentials are set."
        ) from None


def _refresh_error(credential: GoogleCredential, error: BaseException | None) -> Exception:
    from airflow_provider_videogen.exceptions import VideoGenAuthError

    reason = f": {type(error).__name__}: {credential.mask(str(error))[:300]}" if error is not None else ""
    return VideoGenAuthError(
        f"Could not get an access token for the Google connection {credential.gcp_conn_id!r} (the videogen "
        f"connection's gcp_conn_id extra){reason}. Check its service account key or identity, and that the "
        "account may use Vertex AI (roles/aiplatform.user)."
    )
