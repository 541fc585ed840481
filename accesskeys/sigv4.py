"""Verify AWS Signature Version 4 on a Django request, against the product's access keys.

The signature maths is botocore's own signer (``SigV4Auth``): the request is rebuilt as the
client saw it (method, raw percent-encoded path, query, the headers it says it signed, body or
``X-Amz-Content-Sha256``) and botocore computes the signature the secret would give; the two
are compared in constant time. Both forms are accepted: the ``Authorization`` header and a
presigned URL (``X-Amz-Signature`` in the query).

Every rejection raises ``SignatureRejected`` carrying AWS's error code, HTTP status and message,
and writes an audit entry; ``error_response`` turns it into the response AWS would send.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from accesskeys import vault
from accesskeys.models import AccessKey, is_key_id
from executions.services import audit

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "lambda"
TERMINATOR = "aws4_request"
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600  # AWS's limit for X-Amz-Expires (seconds)
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often per key
MAX_AUTHORIZATION_LENGTH = 8192

MISSING_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE = "IncompleteSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"
INVALID = "InvalidSignatureException"

EXPIRED = "ExpiredTokenException"
EXPIRED_MESSAGE = "The security token included in the request is expired."
UNRECOGNIZED_MESSAGE = "The security token included in the request is invalid."
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
SCOPE_DATE = re.compile(r"[0-9]{8}")
EXPIRES = re.compile(r"[0-9]{1,6}")
MAX_KEY_ID_SHOWN = 128  # an unauthenticated claim: keep what is echoed and stored short
REGION = re.compile(r"[a-z0-9-]{1,64}")

Clock = Callable[[], datetime]


class SignatureRejected(Exception):
    """A request whose signature does not authenticate; ``code``/``status``/``message`` as AWS sends them."""

    def __init__(self, code: str, message: str, *, status: int = 403, access_key_id: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.access_key_id = access_key_id[:MAX_KEY_ID_SHOWN]


@dataclass(frozen=True)
class Claim:
    """What the client says it signed, from the Authorization header or a presigned query."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # X-Amz-Date, YYYYMMDDTHHMMSSZ
    presigned_expires: int | None = None


def authenticate(request: HttpRequest, *, clock: Clock = timezone.now) -> Any:
    """Return the user whose access key signed ``request``; raise ``SignatureRejected`` otherwise.

    A rejection is audited (reason, key id, remote address) before it is raised.
    """
    try:
        return _verify(request, clock)
    except SignatureRejected as exc:
        _audit_rejection(request, exc)
        raise


def signing_key_id(request: HttpRequest) -> str:
    """The access key id ``request`` says it is signed with ("" if none): authentic once
    ``authenticate`` has accepted the request (the wire API's audit names it)."""
    try:
        return _claim(request).access_key_id
    except SignatureRejected:
        return ""


def error_response(exc: SignatureRejected) -> JsonResponse:
    """Return AWS's error response for ``exc``: boto3 raises the same exception class from it."""
    body = {"Type": "User", "Message": exc.message, "message": exc.message}
    response = JsonResponse(body, status=exc.status)
    response["x-amzn-ErrorType"] = exc.code
    return response


# --- verification -------------------------------------------------------------------------------


def _verify(request: HttpRequest, clock: Clock) -> Any:
    claim = _claim(request)
    _check_scope(claim)
    _check_time(claim, clock())
    key = _active_key(claim.access_key_id)
    if key.expired(clock()):
        raise SignatureRejected(EXPIRED, EXPIRED_MESSAGE, access_key_id=key.access_key_id)
    secret = _secret(key)
    try:
        expected = _expected_signature(request, claim, secret)
    except UnicodeError:  # text no HTTP client could have signed (lone surrogates)
        raise SignatureRejected(INVALID, MISMATCH_MESSAGE, access_key_id=claim.access_key_id) from None
    if not hmac.compare_digest(expected, claim.signature):
        raise SignatureRejected(INVALID, MISMATCH_MESSAGE, access_key_id=claim.access_key_id)
    _touch(key, clock())
    request.access_key = key  # type: ignore[attr-defined]  # the wire API enforces a key's scope
    return key.user


def _claim(request: HttpRequest) -> Claim:
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        return _claim_from_header(authorization, request)
    query = dict(reversed(_query_pairs(request, presigned=False)))  # the first value of each name
    if "X-Amz-Signature" in query or "X-Amz-Credential" in query:
        return _claim_from_query(query)
    raise SignatureRejected(MISSING_TOKEN, "Missing Authentication Token")


def _claim_from_header(authorization: str, request: HttpRequest) -> Claim:
    if len(authorization) > MAX_AUTHORIZATION_LENGTH:
        raise SignatureRejected(INCOMPLETE, "Authorization header is too long.")
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureRejected(INCOMPLETE, f"Unsupported Authorization Type: {algorithm[:64]!r}; use {ALGORITHM}.")
    params = _header_params(rest)
    missing = [name for name in ("Credential", "Signature", "SignedHeaders") if not params.get(name)]
    if missing:
        needs = " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        raise SignatureRejected(INCOMPLETE, needs)
    timestamp = request.headers.get("X-Amz-Date")
    if not timestamp:
        raise SignatureRejected(
            INCOMPLETE, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    return _make_claim(params["Credential"], params["SignedHeaders"], params["Signature"], timestamp)


def _header_params(text: str) -> dict[str, str]:
    """``Credential=…, SignedHeaders=…, Signature=…`` as a dict (first occurrence of each wins)."""
    params: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if sep and name not in params:
            params[name] = value.strip()
    return params


def _claim_from_query(query: dict[str, str]) -> Claim:
    names = (
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    )
    missing = [name for name in names if not query.get(name)]
    if missing:
        needs = " ".join(f"Query-string authentication requires the {name} parameter." for name in missing)
        raise SignatureRejected(INCOMPLETE, needs)
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise SignatureRejected(INCOMPLETE, f"X-Amz-Algorithm only supports '{ALGORITHM}'.")
    expires = query["X-Amz-Expires"]
    if not EXPIRES.fullmatch(expires) or not 1 <= int(expires) <= MAX_PRESIGN_EXPIRES:
        raise SignatureRejected(
            INCOMPLETE, f"X-Amz-Expires must be a whole number of seconds from 1 to {MAX_PRESIGN_EXPIRES}."
        )
    claim = _make_claim(
        query["X-Amz-Credential"], query["X-Amz-SignedHeaders"], query["X-Amz-Signature"], query["X-Amz-Date"]
    )
    return replace(claim, presigned_expires=int(expires))


def _make_claim(credential: str, signed_headers: str, signature: str, timestamp: str) -> Claim:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise SignatureRejected(
            INCOMPLETE,
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{credential[:200]}'",
        )
    headers = tuple(signed_headers.split(";"))
    if not all(HEADER_NAME.fullmatch(name) for name in headers):
        raise SignatureRejected(INCOMPLETE, "SignedHeaders must be lower-case header names separated by ';'.")
    if "host" not in headers:
        raise SignatureRejected(INCOMPLETE, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if not HEX_SIGNATURE.fullmatch(signature):
        raise SignatureRejected(INCOMPLETE, "Signature must be 64 lower-case hexadecimal characters.")
    key_id, date, region, service, terminator = parts
    return Claim(key_id, date, region, service, terminator, headers, signature, timestamp)


def _check_scope(claim: Claim) -> None:
    if claim.terminator != TERMINATOR:
        raise _invalid(
            claim,
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{claim.terminator[:64]}'.",
        )
    if claim.service != SERVICE:
        raise _invalid(claim, f"Credential should be scoped to correct service: '{SERVICE}'.")
    if not REGION.fullmatch(claim.region):
        raise _invalid(claim, "Credential should be scoped to a valid region.")
    if not SCOPE_DATE.fullmatch(claim.date) or claim.date != claim.timestamp[:8]:
        raise _invalid(
            claim,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{claim.date[:16]}' != '{claim.timestamp[:8]}', from '{claim.timestamp[:32]}'.",
        )


def _check_time(claim: Claim, now: datetime) -> None:
    try:
        signed_at = datetime.strptime(claim.timestamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRejected(
            INCOMPLETE,
            f"X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", got '{claim.timestamp[:32]}'.",
            access_key_id=claim.access_key_id,
        ) from None
    stamp = _stamp(signed_at)
    if signed_at > now + MAX_SKEW:
        raise _invalid(
            claim,
            f"Signature not yet current: {stamp} is still later than {_stamp(now + MAX_SKEW)} ({_stamp(now)} + 15 min.)",
        )
    valid_for = timedelta(seconds=claim.presigned_expires) if claim.presigned_expires else MAX_SKEW
    if signed_at < now - valid_for:
        if claim.presigned_expires:
            raise _invalid(
                claim,
                f"Signature expired: {stamp} is now earlier than {_stamp(now - valid_for)} (presigned URL, X-Amz-Expires={claim.presigned_expires}).",
            )
        raise _invalid(
            claim, f"Signature expired: {stamp} is now earlier than {_stamp(now - MAX_SKEW)} ({_stamp(now)} - 15 min.)"
        )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(SIGV4_TIMESTAMP)


def _invalid(claim: Claim, message: str) -> SignatureRejected:
    return SignatureRejected(INVALID, message, access_key_id=claim.access_key_id)


def _key_named(access_key_id: str) -> AccessKey | None:
    if not is_key_id(access_key_id):
        return None
    return AccessKey.objects.select_related("user").filter(access_key_id=access_key_id).first()


def _active_key(access_key_id: str) -> AccessKey:
    key = _key_named(access_key_id)
    if key is None or not key.is_active or not key.user.is_active:
        raise SignatureRejected(UNRECOGNIZED, UNRECOGNIZED_MESSAGE, access_key_id=access_key_id)
    return key


def _secret(key: AccessKey) -> str:
    try:
        return key.secret()
    except vault.InvalidToken:
        # Encrypted under a SECRET_KEY this site no longer has (no SECRET_KEY_FALLBACKS entry).
        raise SignatureRejected(UNRECOGNIZED, UNRECOGNIZED_MESSAGE, access_key_id=key.access_key_id) from None


def _touch(key: AccessKey, now: datetime) -> None:
    stale_before = now - LAST_USED_RESOLUTION
    if key.last_used_at is not None and key.last_used_at >= stale_before:
        return  # as the row was read for this request: the guarded UPDATE would match nothing
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale_before)
    AccessKey.objects.filter(pk=key.pk).filter(stale).update(last_used_at=now)


# --- the request as the client signed it --------------------------------------------------------


class _ClaimedHeadersSigner(SigV4Auth):
    """botocore's signer, told to sign exactly the headers the client listed.

    botocore picks the headers itself (all but a few such as User-Agent); another client may
    have signed a different set, and the signature covers whatever that set was.
    """

    def __init__(self, claim: Claim, secret: str) -> None:
        super().__init__(Credentials(claim.access_key_id, secret), claim.service, claim.region)
        self._signed = claim.signed_headers

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or [""]:
                chosen[name] = value
        return chosen


def _expected_signature(request: HttpRequest, claim: Claim, secret: str) -> str:
    rebuilt = _rebuild(request, claim)
    signer = _ClaimedHeadersSigner(claim, secret)
    canonical = signer.canonical_request(rebuilt)
    return signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt)


def _rebuild(request: HttpRequest, claim: Claim) -> AWSRequest:
    body = request.body
    headers = HTTPHeaders()
    for name in claim.signed_headers:
        headers[name] = request.headers.get(name, "")
    content_sha256 = request.headers.get("X-Amz-Content-Sha256")
    if content_sha256 is not None:
        _check_content_sha256(content_sha256, body, claim)
        if "X-Amz-Content-SHA256" not in headers:  # botocore signs this value instead of hashing the body
            headers["X-Amz-Content-SHA256"] = content_sha256
    # The host is signed from the Host header (headers_to_sign); the URL only carries the path.
    rebuilt = AWSRequest(
        method=request.method, url=f"http://signed.invalid{raw_path(request)}", headers=headers, data=body
    )
    rebuilt.params = _query_pairs(request, presigned=claim.presigned_expires is not None)
    rebuilt.context["timestamp"] = claim.timestamp
    return rebuilt


def _check_content_sha256(value: str, body: bytes, claim: Claim) -> None:
    """The declared payload hash is what gets signed, so it must be the body's own hash."""
    if not HEX_SHA256.fullmatch(value) or not hmac.compare_digest(value, hashlib.sha256(body).hexdigest()):
        raise _invalid(claim, "The provided 'x-amz-content-sha256' header does not match what was computed.")


def raw_path(request: HttpRequest) -> str:
    """The path exactly as the client sent it, still percent-encoded.

    Clients percent-encode a whole ARN into one path segment (``/`` as ``%2F``) and sign that;
    the WSGI server decodes PATH_INFO, losing which slashes were encoded. Waitress passes the
    raw target as REQUEST_URI, gunicorn as RAW_URI; other servers get PATH_INFO re-encoded,
    which matches whenever the path held no encoded ``/``.
    """
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if raw:
        path = urlsplit(raw).path if "://" in raw.split("?", 1)[0] else raw.split("?", 1)[0]
        return path if path.startswith("/") else f"/{path}"
    # Encoded as botocore encodes a path label: everything but unreserved characters and "/".
    return quote(f"{request.META.get('SCRIPT_NAME', '')}{request.path_info}", safe="/-._~")


def _query_pairs(request: HttpRequest, *, presigned: bool) -> list[tuple[str, str]]:
    """The query's pairs decoded once; botocore re-encodes them the canonical way (RFC 3986)."""
    pairs = []
    for part in request.META.get("QUERY_STRING", "").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name, value = unquote(name), unquote(value)
        if not (presigned and name == "X-Amz-Signature"):
            pairs.append((name, value))
    return pairs


# --- audit --------------------------------------------------------------------------------------


def _audit_rejection(request: HttpRequest, exc: SignatureRejected) -> None:
    key = _key_named(exc.access_key_id)
    key_id, path = _storable(exc.access_key_id), _storable(request.path)
    audit(
        user=key.user if key else AnonymousUser(),
        action="access_key.rejected",
        target=key_id or path,
        ok=False,
        reason=exc.code,
        message=_storable(exc.message),
        access_key_id=key_id,
        remote_addr=_storable(request.META.get("REMOTE_ADDR", "")),
        method=_storable(request.method or ""),
        path=path,
    )


def _storable(text: str, limit: int = 512) -> str:
    """Client text as PostgreSQL stores it: NUL and lone surrogates escaped, not refused."""
    escaped = text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")
