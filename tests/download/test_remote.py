"""The file host: what its headers say about the file (advertised checksums)."""

from __future__ import annotations

import pytest

from airflow_provider_videogen.download.remote import advertised_sha256


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-amz-checksum-sha256": "LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="}, "2c26b4"),
        ({"x-amz-checksum-sha256": "LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=-3"}, None),  # multipart
        ({"Repr-Digest": "sha-512=:abc=:, sha-256=:LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=:"}, "2c26b4"),
        ({"Digest": "SHA-256=LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="}, "2c26b4"),
        ({"x-checksum-sha256": "2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE"}, "2c26b4"),
        ({"ETag": '"acbd18db4cc2f85cedef654fccc4a4d8"'}, None),  # an ETag is never taken for a hash
    ],
)
def test_advertised_sha256_reads_the_standard_checksum_headers(headers, expected):
    found = advertised_sha256(headers)
    assert (found[:6] if found else None) == expected
