"""The connection's API key travels as one credential value, made by the style: headers, where they go, its mask."""

from __future__ import annotations

import json

import pytest

from airflow_provider_videogen.credential import Credential
from airflow_provider_videogen.settings import VideoGenConnectionSettings

KEY = 'sk-a/b"c-test-key-41c7'
BASE = "https://gw.example.com"


def settings(api_style: str = "contents_generations") -> VideoGenConnectionSettings:
    return VideoGenConnectionSettings(conn_id="c", base_url=BASE, api_key=KEY, api_style=api_style)


@pytest.mark.parametrize(
    ("api_style", "headers"),
    [("contents_generations", {"Authorization": f"Bearer {KEY}"}), ("gemini_veo", {"x-goog-api-key": KEY})],
)
def test_the_style_makes_the_credential_from_the_connection(api_style, headers):
    credential = settings(api_style).credential
    assert isinstance(credential, Credential)
    assert dict(credential.headers) == headers
    assert credential.header_names == frozenset(name.lower() for name in headers)


def test_the_key_goes_only_to_the_apis_own_origin():
    credential = settings().credential
    assert dict(credential.headers_for(f"{BASE}:443/files/v.mp4")) == {"Authorization": f"Bearer {KEY}"}
    assert dict(credential.headers_for("https://files.example.com/v.mp4")) == {}
    assert dict(credential.headers_for("http://gw.example.com/v.mp4")) == {}


def test_the_credential_shows_no_key_in_its_repr():
    assert KEY not in repr(settings().credential) and KEY not in repr(settings())


@pytest.mark.parametrize(
    "encoding",
    [
        pytest.param(lambda key: key, id="as-is"),
        pytest.param(lambda key: json.dumps(key)[1:-1], id="json"),
        pytest.param(lambda key: json.dumps(key)[1:-1].replace("/", "\\/"), id="slash"),
        pytest.param(
            lambda key: "".join(f"\\u{ord(c):04x}" if i % 3 == 0 else c for i, c in enumerate(key)), id="some"
        ),
        pytest.param(lambda key: "".join(f"\\u{ord(c):04X}" for c in key), id="every-letter"),
    ],
)
def test_the_credential_masks_every_encoding_of_the_key_in_a_text(encoding):
    text = f"upstream said: bad key {encoding(KEY)} (try another)"
    assert settings().credential.mask(text) == "upstream said: bad key *** (try another)"


def test_a_text_without_the_key_is_returned_as_it_is():
    text = "nothing secret \\u0041 here"
    assert settings().credential.mask(text) is text
