"""The connection's API key as one value: the only thing that carries it, like an ``Auth`` of requests or httpx.

The connection's API style makes it (:meth:`ApiStyle.credential
<airflow_provider_videogen.styles.base.ApiStyle.credential>`): it knows the headers that carry the
key, sends them only to the API's own origin, names the headers to strip from a request anywhere
else, and masks the key in every encoding a text or an answer may hold it in. Nothing else handles
the bare key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["MASK", "BorrowedCredential", "Credential", "origin_of"]

#: What stands for the key wherever it was.
MASK = "***"

# JSON's short escapes: a key holding one of these characters may be written so.
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class Credential:
    """The connection's API key, with what may be done with it.

    :param api_key: the key (never shown: not in ``repr``, not in any text this returns).
    :param base_url: the API's base URL: the key goes to its origin only.
    :param auth_headers: the headers that carry the key (the style's).
    :param request_headers: all the headers of an API call that does ``action``, made from the key
        (the style's ``request_headers``).
    """

    __slots__ = ("_actions", "_auth_headers", "_key", "_pattern", "_request_headers", "origin")

    def __init__(
        self,
        api_key: str,
        base_url: str,
        auth_headers: Mapping[str, str],
        request_headers: Callable[[str, str], Mapping[str, str]],
    ) -> None:
        self._key = api_key
        #: The API's origin (``scheme://host:port``): the only one its headers are sent to.
        self.origin = origin_of(base_url)
        self._auth_headers = dict(auth_headers)
        self._request_headers = request_headers
        # Made once per action: a poll's headers cost no new dict.
        self._actions: dict[str, Mapping[str, str]] = {}
        self._pattern: re.Pattern[str] | None = None

    def __repr__(self) -> str:
        return f"<Credential for {self.origin}>"

    @property
    def headers(self) -> Mapping[str, str]:
        """The headers that carry the key, for a request to :attr:`origin`."""
        return self._auth_headers

    @property
    def header_names(self) -> frozenset[str]:
        """The names of those headers in lower case: strip them from a request to any other origin."""
        return frozenset(name.lower() for name in self._auth_headers)

    def headers_for(self, url: str) -> Mapping[str, str]:
        """Return the headers that carry the key for a request to ``url``: none unless it is the API's own origin."""
        return self._auth_headers if origin_of(url) == self.origin else {}

    def request_headers(self, action: str) -> Mapping[str, str]:
        """All the headers of an API call that does ``action`` (``create``, ``query``, ``cancel``, ``list``...)."""
        headers = self._actions.get(action)
        if headers is None:
            headers = self._actions[action] = self._request_headers(self._key, action)
        return headers

    def mask(self, text: str) -> str:
        r"""Return ``text`` with the key masked in every JSON encoding of it (as it is, ``\\/``, ``\\u0073``...).

        The very text comes back when it holds no key.
        """
        if not self._key:
            return text
        if self._pattern is None:
            self._pattern = re.compile("".join(_encodings(character) for character in self._key))
        return self._pattern.sub(MASK, text) if self._pattern.search(text) else text

    def mask_body(self, body: bytes) -> bytes:
        """Return an answer's body with the key, as it is, masked (its escaped forms: :meth:`mask_json`)."""
        key = self._key.encode()
        return body.replace(key, MASK.encode()) if key and key in body else body

    def mask_json(self, decoded: Any) -> Any:
        """Return decoded JSON with the key masked in every string, names of members included.

        The very object comes back when nothing was masked (and at once when it surely holds no key).
        """
        if not self._key or not _may_hold_key(decoded, self._key):
            return decoded
        return _mask_key(decoded, self._key)


def origin_of(url: str) -> str:
    """Return a URL's origin, ``scheme://host:port`` (the port always written), for comparing two URLs."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def _encodings(character: str) -> str:
    r"""Return a regular expression for ``character`` in any JSON encoding of it: itself, ``\uXXXX``, a short escape."""
    forms = [re.escape(character)]
    if ord(character) <= 0xFFFF:
        forms.append(re.escape("\\u") + f"(?i:{ord(character):04x})")
    if character in _SHORT_ESCAPES:
        forms.append(re.escape(_SHORT_ESCAPES[character]))
    return f"(?:{'|'.join(forms)})"


def _may_hold_key(decoded: Any, api_key: str) -> bool:
    r"""Whether some string of the decoded answer may hold ``api_key`` (``False``: it surely holds none).

    Many hosts escape characters of every answer (``\u0026`` in a signed URL): one pass of the C
    encoder, which writes strings as they are but for quotes, backslashes and control characters,
    spares the triggerer a walk through each of those answers. A string holding a backslash may be
    JSON escaped once more (an upstream error passed on as text), so it is walked too.
    """
    if not api_key.isprintable() or '"' in api_key or "\\" in api_key:
        return True
    shown = json.dumps(decoded, ensure_ascii=False)
    return api_key in shown or "\\\\" in shown


def _mask_key(value: Any, api_key: str) -> Any:
    """Return the decoded JSON ``value`` with ``api_key`` masked in every string, names of members included.

    The very object comes back when nothing was masked. A string that is JSON itself (an upstream
    error passed on as text) is masked inside too, as it is decoded again later.
    """
    if isinstance(value, str):
        text = value.replace(api_key, MASK) if api_key in value else value
        if "\\" in text and text.lstrip()[:1] in ("{", "["):
            try:
                inner = json.loads(text)
            except ValueError:
                return text
            masked_inner = _mask_key(inner, api_key)
            return text if masked_inner is inner else json.dumps(masked_inner, ensure_ascii=False)
        return text
    if isinstance(value, list):
        items = [_mask_key(item, api_key) for item in value]
        return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
    if isinstance(value, dict):
        pairs = [(_mask_key(name, api_key), _mask_key(item, api_key)) for name, item in value.items()]
        old_pairs = value.items()
        changed = any(new[0] is not old[0] or new[1] is not old[1] for new, old in zip(pairs, old_pairs, strict=True))
        return dict(pairs) if changed else value
    return value


class BorrowedCredential(Credential):
    """A cloud connection's credentials, borrowed instead of a key: each API call is signed on its own.

    The face every borrowed credential shares: no fixed header (the client asks :meth:`sign` for each
    request's), no file fetched with it over a file URL, and every secret seen (a secret key, a
    session token, an access token: the subclass adds a masker for each) masked in every encoding.

    :param base_url: the API's base URL: requests to any other origin are never signed.
    :param header_names: the headers a signature adds, in lower case: stripped from a request elsewhere.
    """

    #: The client signs each request with :meth:`sign` (a plain :class:`Credential` has fixed headers).
    signs = True

    def __init__(self, base_url: str, header_names: frozenset[str]) -> None:
        super().__init__("", base_url, {}, no_request_headers)
        self._signature_headers = header_names
        # One masker per secret seen, made once it is known (a refresh may bring a new one).
        self._maskers: tuple[Credential, ...] = ()

    @property
    def headers(self) -> Mapping[str, str]:
        """No fixed header carries the credentials: each request gets its own (:meth:`sign`)."""
        return {}

    @property
    def header_names(self) -> frozenset[str]:
        """The signature's headers, in lower case: strip them from a request to any other origin."""
        return self._signature_headers

    def headers_for(self, url: str) -> Mapping[str, str]:
        """No file is fetched with borrowed credentials over a file URL (buckets go through Airflow's providers)."""
        return {}

    def request_headers(self, action: str) -> Mapping[str, str]:
        """Return the unsigned headers of an API call (:meth:`sign` adds the signature per request)."""
        return {"Accept": "application/json"}

    def mask(self, text: str) -> str:
        """Return ``text`` with every secret seen masked, in every JSON encoding of it."""
        for masker in self._maskers:
            text = masker.mask(text)
        return text

    def mask_body(self, body: bytes) -> bytes:
        """Return an answer's body with every secret seen, as it is, masked."""
        for masker in self._maskers:
            body = masker.mask_body(body)
        return body

    def mask_json(self, decoded: Any) -> Any:
        """Return decoded JSON with every secret seen masked in every string."""
        for masker in self._maskers:
            decoded = masker.mask_json(decoded)
        return decoded

    def sign(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        """Return ``headers`` with this request's signature, for a request to the API's origin (sync)."""
        raise NotImplementedError

    async def asign(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        """Return ``headers`` with this request's signature without blocking the event loop."""
        raise NotImplementedError


def no_request_headers(_secret: str, _action: str) -> Mapping[str, str]:
    """Return no request headers: a credential made only to mask one borrowed secret sends none."""
    return {}
