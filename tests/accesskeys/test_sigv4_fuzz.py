"""Hostile Authorization headers, dates, hashes and presigned queries: a SignatureRejected, never a crash."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import RequestFactory
from hypothesis import example, given
from hypothesis import strategies as st

from accesskeys import services, sigv4
from executions.models import AuditEntry
from tests.accesskeys.conftest import make_user
from tests.fuzz.hostile import HOSTILE_STRINGS, fuzz_settings, hostile_text

FUZZ = fuzz_settings(max_examples=150)
NOW = dt.datetime.now(dt.UTC)
STAMP = NOW.strftime("%Y%m%dT%H%M%SZ")


@pytest.fixture(scope="module")
def real_key(django_db_blocker: Any) -> services.NewAccessKey:
    with django_db_blocker.unblock():
        return services.access_key_create(user=make_user("fuzz"))


def part(plausible: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(plausible), hostile_text)


def header(key_id: str) -> st.SearchStrategy[str]:
    credential = st.builds(
        "/".join,
        st.tuples(
            part([key_id, "AKIA" + "Q" * 16]),
            part([STAMP[:8]]),
            part(["us-east-1"]),
            part(["lambda", "s3"]),
            part(["aws4_request"]),
        ),
    )
    return st.one_of(
        hostile_text,
        st.builds(
            "AWS4-HMAC-SHA256 Credential={}, SignedHeaders={}, Signature={}".format,
            st.one_of(credential, hostile_text),
            part(["host;x-amz-date", "host", "content-type;host;x-amz-date", "HOST", "host;;"]),
            part(["0" * 64, "f" * 64, "F" * 64, "0" * 63]),
        ),
        st.builds("{} {}".format, part(["AWS4-HMAC-SHA256", "Basic", "AWS4-HMAC-SHA256 "]), hostile_text),
    )


def authenticate(**meta: Any) -> None:
    request = RequestFactory().post(
        "/2025-12-01/durable-execution-callbacks/x/succeed", data=b"{}", content_type="application/json", **meta
    )
    try:
        sigv4.authenticate(request)
    except sigv4.SignatureRejected as exc:
        assert exc.status == 403 and exc.code in {
            sigv4.MISSING_TOKEN,
            sigv4.INCOMPLETE,
            sigv4.UNRECOGNIZED,
            sigv4.INVALID,
        }
        assert sigv4.error_response(exc).status_code == 403
    else:
        pytest.fail("a fuzzed request authenticated")


@FUZZ
@given(data=st.data())
@example(data=None)
def test_authorization_header_never_crashes(real_key: services.NewAccessKey, data: Any) -> None:
    if data is None:  # the seeds first
        for seed in HOSTILE_STRINGS:
            authenticate(HTTP_AUTHORIZATION=seed, HTTP_X_AMZ_DATE=seed)
        return
    meta = {"HTTP_AUTHORIZATION": data.draw(header(real_key.key.access_key_id))}
    meta["HTTP_X_AMZ_DATE"] = data.draw(part([STAMP, "20000101T000000Z", "99991231T235959Z", "2026-12-04"]))
    if data.draw(st.booleans()):
        meta["HTTP_X_AMZ_CONTENT_SHA256"] = data.draw(part(["UNSIGNED-PAYLOAD", "0" * 64]))
    authenticate(**meta)


@FUZZ
@given(data=st.data())
def test_presigned_query_never_crashes(real_key: services.NewAccessKey, data: Any) -> None:
    names = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ]
    plausible = {
        "X-Amz-Algorithm": ["AWS4-HMAC-SHA256"],
        "X-Amz-Credential": [f"{real_key.key.access_key_id}/{STAMP[:8]}/us-east-1/lambda/aws4_request"],
        "X-Amz-Date": [STAMP],
        "X-Amz-Expires": ["60", "0", "604801", "²"],
        "X-Amz-SignedHeaders": ["host"],
        "X-Amz-Signature": ["0" * 64],
    }
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, min_size=1))
    from urllib.parse import quote

    query = "&".join(
        f"{name}={quote(data.draw(part(plausible[name])), safe='', errors='surrogatepass')}" for name in chosen
    )
    if data.draw(st.booleans()):
        query += "&" + data.draw(hostile_text).encode("utf-8", "surrogatepass").decode(
            "latin-1"
        )  # as WSGI hands it over
    authenticate(QUERY_STRING=query)


def test_every_fuzzed_rejection_left_an_audit_row() -> None:
    assert AuditEntry.objects.filter(action="access_key.rejected", detail__method="POST").exists()
