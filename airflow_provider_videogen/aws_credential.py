"""Credentials borrowed from an Airflow ``aws`` connection: every API call SigV4-signed, no key in the ``videogen`` one.

A style whose service is on AWS (``bedrock_video``) makes one of these instead of a
:class:`~airflow_provider_videogen.credential.Credential`: it has the same face (the client, the
answer reader and the downloader ask it the same questions), but its "key" is the AWS connection's
credentials, resolved through Airflow's Amazon provider (keys, profiles, assumed roles, web identity,
the instance's role...), and an API call's headers are not fixed: each request is signed for its
method, URL, body and time (:meth:`AwsCredential.sign`).

Resolving may call STS or the instance metadata service, and reading the Airflow connection is a
call to the API server: the sync path (a worker) does it in place; the async path (the triggerer)
reads the connection with Airflow's async API and builds the session in a thread
(:meth:`AwsCredential.aresolve`), so nothing blocks the event loop. A refreshable credential that
is about to expire is refreshed in a thread too (:meth:`AwsCredential.asign`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.credential import BorrowedCredential, Credential, no_request_headers, origin_of

if TYPE_CHECKING:
    from botocore.credentials import Credentials

__all__ = ["SIGNATURE_HEADERS", "AwsCredential"]

#: The headers a SigV4 signature adds: stripped from any request to another origin.
SIGNATURE_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"})


class AwsCredential(BorrowedCredential):
    """An Airflow ``aws`` connection's credentials, signing each API call to one origin with SigV4.

    A :class:`~airflow_provider_videogen.credential.Credential` without a key of its own: no fixed
    header carries anything, and what it masks is the borrowed secret key and session token.

    :param aws_conn_id: the Airflow ``aws`` connection to borrow (``None``: boto3's default chain,
        as the Amazon provider does without a connection).
    :param region_name: the region requests are signed for.
    :param service: the SigV4 signing name (``bedrock`` for the Bedrock runtime).
    :param base_url: the API's base URL: requests to any other origin are never signed.
    """

    def __init__(self, aws_conn_id: str | None, region_name: str, service: str, base_url: str) -> None:
        super().__init__(base_url, SIGNATURE_HEADERS)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.service = service
        self._credentials: Credentials | None = None
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"<AWS credential of connection {self.aws_conn_id!r} for {self.service} in {self.region_name}>"

    # ---- resolving and signing ----

    def resolve(self) -> Credentials:
        """Return the connection's credentials, resolved once (sync: reads the connection, may call STS)."""
        if self._credentials is None:
            from airflow.sdk import BaseHook

            self._set(_session_credentials(_aws_connection(BaseHook.get_connection, self.aws_conn_id), self))
        assert self._credentials is not None
        return self._credentials

    async def aresolve(self) -> Credentials:
        """Return the connection's credentials without blocking the event loop (see the module's docstring)."""
        if self._credentials is None:
            from airflow.sdk import BaseHook

            conn = await _aaws_connection(BaseHook.aget_connection, self.aws_conn_id)
            self._set(await asyncio.to_thread(_session_credentials, conn, self))
        assert self._credentials is not None
        return self._credentials

    def sign(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        """Return ``headers`` with a SigV4 signature of this request (method, URL, body, now) added.

        Only a request to the API's own origin is signed; any other gets ``headers`` as they are.
        """
        if origin_of(url) != self.origin:
            return dict(headers)
        # A refreshable credential refreshes here when it is about to expire (STS: blocking).
        return self._signed(method, url, headers, body, _frozen(self, self.resolve()))

    async def asign(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        """Return the signed headers as :meth:`sign` does, refreshing an expiring credential in a thread."""
        if origin_of(url) != self.origin:
            return dict(headers)
        credentials = await self.aresolve()
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            frozen = await asyncio.to_thread(_frozen, self, credentials)
        else:
            frozen = _frozen(self, credentials)
        return self._signed(method, url, headers, body, frozen)

    def _signed(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, frozen: Any
    ) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if frozen.access_key is None or frozen.secret_key is None:
            raise _no_credentials(self)
        self._note_secrets(frozen.secret_key, frozen.token)
        signed_headers = {"Content-Type": "application/json"} if body is not None else {}
        request = AWSRequest(method=method, url=url, data=body, headers=signed_headers)
        SigV4Auth(frozen, self.service, self.region_name).add_auth(request)
        return {**headers, **dict(request.headers.items())}

    def _set(self, credentials: Credentials | None) -> None:
        with self._lock:
            if self._credentials is None:
                if credentials is None:
                    raise _no_credentials(self)
                self._credentials = credentials

    def _note_secrets(self, secret_key: str, token: str | None) -> None:
        """Mask the secret key and the session token from now on (a refresh brings new ones)."""
        new = [secret for secret in (secret_key, token) if secret and secret not in self._secrets]
        if not new:
            return
        for secret in new:
            _mask_in_airflow_logs(secret)
        self._secrets = self._secrets | set(new)
        # A Credential masks one secret in every JSON encoding of it: reused, one per secret.
        self._maskers = tuple(Credential(secret, self.origin, {}, no_request_headers) for secret in self._secrets)


def _mask_in_airflow_logs(secret: str) -> None:
    """Have Airflow's own log masking hide ``secret`` too, as the Amazon provider does for its credentials."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - an Airflow without it: the provider's own masking still applies
        return
    mask_secret(secret)


def _aws_connection(get_connection: Any, aws_conn_id: str | None) -> Any:
    """Return the Airflow ``aws`` connection, or ``None`` when none is named or it does not exist."""
    from airflow.exceptions import AirflowNotFoundException

    if not aws_conn_id:
        return None
    try:
        return get_connection(aws_conn_id)
    except AirflowNotFoundException:
        return None  # as the Amazon provider: boto3's default chain (environment, profile, instance role)


async def _aaws_connection(aget_connection: Any, aws_conn_id: str | None) -> Any:
    from airflow.exceptions import AirflowNotFoundException

    if not aws_conn_id:
        return None
    try:
        return await aget_connection(aws_conn_id)
    except AirflowNotFoundException:
        return None


def _session_credentials(conn: Any, credential: AwsCredential) -> Credentials | None:
    """Build the Amazon provider's session of ``conn`` (keys, profile, assumed role...) and return its credentials."""
    from airflow.providers.amazon.aws.hooks.base_aws import BaseSessionFactory
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = BaseSessionFactory(conn=conn, region_name=credential.region_name).create_session()
        found: Credentials | None = session.get_credentials()
    except (BotoCoreError, ClientError) as error:
        raise _credentials_error(credential, error) from None
    return found


def _frozen(credential: AwsCredential, credentials: Credentials) -> Any:
    """Return the credentials' current keys, refreshed first when they expire (an assumed role: an STS call)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return credentials.get_frozen_credentials()
    except (BotoCoreError, ClientError) as error:
        raise _credentials_error(credential, error) from None


def _credentials_error(credential: AwsCredential, error: Exception) -> Exception:
    """Return the error for credentials the aws connection could not give (STS refused or unreachable...)."""
    from airflow_provider_videogen.exceptions import VideoGenAuthError

    return VideoGenAuthError(
        f"Could not get AWS credentials from the aws connection {credential.aws_conn_id!r} (the videogen "
        f"connection's aws_conn_id extra) for the {credential.service} API: {type(error).__name__}: "
        f"{credential.mask(str(error))[:300]}. Check its keys, its role_arn and that the role may be assumed "
        "(sts:AssumeRole), and that STS can be reached from here."
    )


def _no_credentials(credential: AwsCredential) -> Exception:
    from airflow_provider_videogen.exceptions import VideoGenConfigurationError

    return VideoGenConfigurationError(
        f"No AWS credentials were found for the {credential.service} API: the aws connection "
        f"{credential.aws_conn_id!r} (the videogen connection's aws_conn_id extra) has none, and neither has "
        "the worker's environment, profile or instance role. Give that aws connection a key or a role_arn, or "
        "run where a role is attached."
    )
