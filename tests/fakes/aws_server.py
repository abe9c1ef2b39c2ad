"""What the AWS fakes (Bedrock, SageMaker) share: a strict SigV4 check, AWS's error replies and
the binary event stream (application/vnd.amazon.eventstream).

SigV4 is verified the way AWS does it, from scratch (hashlib/hmac, not botocore, so the adapter's
signer is checked by an independent implementation, and boto3 checks this one): the canonical
request (method, the path URI-encoded once more, sorted query, the signed headers, the body's
SHA-256), the string to sign, the key chain HMAC("AWS4"+secret, date) -> region -> service ->
"aws4_request". Refusals are AWS's, status 403 with `{"message"}` and `x-amzn-ErrorType`:
no Authorization -> MissingAuthenticationTokenException; an unknown access key ->
UnrecognizedClientException; X-Amz-Date more than 5 minutes off -> InvalidSignatureException
("Signature expired" / "Signature not yet current"); a wrong region or service in the scope, or
a signature that does not match -> InvalidSignatureException. `skew` moves the fake's clock (to
test expiry).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import html
import json
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.base import FakeServer, Reply, Request

NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.coral.service/"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
MAX_SKEW = timedelta(minutes=5)
# AWS's status conventions for the base failure modes.
STATUS_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
# The names STS (a Query API) gives the refusals other services send as JSON.
STS_CODES = {
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "ExpiredTokenException": "ExpiredToken",
}


def sts_error(status: int, code: str, message: str) -> Reply:
    xml = (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{html.escape(message)}</Message></Error><RequestId>0</RequestId>"
        f"</ErrorResponse>"
    )
    return Reply(status, xml.encode(), content_type="text/xml")


def aws_error(status: int, error_type: str, message: str, *, field: str = "message") -> Reply:
    return Reply(status, {field: message}, headers={"x-amzn-ErrorType": error_type + NAMESPACE})


def sigv4_sign_in(
    service: str,
) -> Callable[[Mapping[str, str], str, str, bytes, dict[str, str]], dict[str, str]]:
    """A strictness suite's `sign_in` for an AWS service: the request signed by botocore's own
    SigV4Auth (not by this module's checker) with the credentials' key, for their region."""

    def sign_in(
        credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        key = Credentials(credentials["access_key_id"], credentials["secret_access_key"])
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(key, service, credentials.get("region") or "us-east-1").add_auth(request)
        return dict(request.headers.items())

    return sign_in


def constraint(
    value: Any,
    where: str,
    must: str,
    error_type: str = "ValidationException",
    field: str = "message",
) -> Reply:
    """A 400 ValidationException in the words of AWS's model validation (as continuedev/continue
    #2296 quotes Bedrock's: "1 validation error detected: Value '[...]' at
    'inferenceConfig.stopSequences' failed to satisfy constraint: Member must have length less
    than or equal to 4")."""
    shown = "null" if value is None else f"'{value}'"
    return aws_error(
        400,
        error_type,
        f"1 validation error detected: Value {shown} at '{where}' failed to satisfy constraint: "
        f"Member must {must}",
        field=field,
    )


def serialization(message: str) -> Reply:
    """A 400 SerializationException: a body member of the wrong JSON type."""
    return aws_error(400, "SerializationException", message)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_request(request: Request, signed: list[str]) -> str:
    query = sorted(
        (quote(key, safe="-_.~"), quote(value, safe="-_.~"))
        for key, values in request.query.items()
        for value in values
    )
    headers = "".join(
        f"{name}:{' '.join(request.header(name).split())}\n" for name in signed
    )  # fmt: skip
    payload = request.header("x-amz-content-sha256") or hashlib.sha256(request.body).hexdigest()
    return "\n".join(
        [
            request.method,
            quote(request.path, safe="/~"),  # the path as sent, encoded once more (non-S3)
            "&".join(f"{k}={v}" for k, v in query),
            headers,
            ";".join(signed),
            payload,
        ]
    )


def signature(secret: str, stamp: str, scope: str, canonical: str) -> str:
    date, region, service, terminal = scope.split("/")
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, terminal):
        key = _hmac(key, part)
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event stream message: prelude (total length, headers length, CRC32 of those 8 bytes),
    string headers (name length u8, name, type 7, value length u16, value), payload, CRC32 of all
    that came before."""
    encoded = b"".join(
        struct.pack("B", len(name)) + name.encode() + b"\x07" + struct.pack(">H", len(value))
        + value.encode()
        for name, value in headers.items()
    )  # fmt: skip
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(name: str, data: Any, content_type: str = "application/json") -> bytes:
    payload = data if isinstance(data, bytes) else json.dumps(data).encode()
    return frame(
        {":event-type": name, ":content-type": content_type, ":message-type": "event"}, payload
    )


def exception(name: str, data: Any) -> bytes:
    return frame(
        {
            ":exception-type": name,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps(data).encode(),
    )


class AwsFake(FakeServer):
    """A SigV4 service: `keys` (access key ID -> secret) sign for `region` and `service`.
    Subclasses add routes through `signed_route`, which checks each request's signature first."""

    error_field = "message"

    def __init__(
        self, keys: Mapping[str, str], *, region: str = "us-east-1", service: str = ""
    ) -> None:
        super().__init__(api_key=None)
        self.keys = dict(keys)
        self.region = region
        self.service = service
        self.skew = timedelta(0)
        self.sessions: dict[str, tuple[str, datetime]] = {}  # temporary key -> (token, expiry)
        self.roles: set[str] = set()
        self.role_lifetime = timedelta(hours=1)
        self.assumed = 0

    def signed_route(self, method: str, pattern: str, handler: Callable[[Request], Reply]) -> None:
        def checked(request: Request) -> Reply:
            refusal = self.check_auth(request)
            return refusal if refusal is not None else handler(request)

        self.route(method, pattern, checked)

    def check_auth(self, request: Request, service: str = "") -> Reply | None:
        """None when the request is signed right (for `service`, by default the fake's own),
        else AWS's refusal. Temporary credentials (from `assume_role`) also need their session
        token, and expire."""
        service = service or self.service
        header = request.header("authorization")
        if not header:
            return aws_error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        match = _AUTHORIZATION.match(header)
        if match is None:
            return aws_error(
                403,
                "IncompleteSignatureException",
                f"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                f"parameters. Authorization={header.split(' ')[0]}",
            )
        access_key, _, scope = match["credential"].partition("/")
        if access_key not in self.keys:
            return aws_error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        stamp = request.header("x-amz-date")
        try:
            sent_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return aws_error(403, "IncompleteSignatureException", "Date must be in ISO-8601 format")
        now = datetime.now(UTC) + self.skew
        if abs(now - sent_at) > MAX_SKEW:
            now_text = now.strftime("%Y%m%dT%H%M%SZ")
            if sent_at < now:
                earliest = (now - MAX_SKEW).strftime("%Y%m%dT%H%M%SZ")
                problem = (
                    f"Signature expired: {stamp} is now earlier than {earliest} "
                    f"({now_text} - 5 min.)"
                )
            else:
                latest = (now + MAX_SKEW).strftime("%Y%m%dT%H%M%SZ")
                problem = (
                    f"Signature not yet current: {stamp} is still later than {latest} "
                    f"({now_text} + 5 min.)"
                )
            return aws_error(403, "InvalidSignatureException", problem)
        parts = scope.split("/")
        if len(parts) != 4 or parts[0] != stamp[:8] or parts[3] != "aws4_request":
            return aws_error(
                403, "InvalidSignatureException", "Credential should be scoped correctly."
            )
        if parts[1] != self.region:
            return aws_error(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{parts[1]}'. ",
            )
        if parts[2] != service:
            return aws_error(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{service}'. ",
            )
        signed = match["signed"].split(";")
        if "host" not in signed or signed != sorted(signed):
            return aws_error(403, "InvalidSignatureException", SIGNATURE_MISMATCH)
        expected = signature(
            self.keys[access_key], stamp, scope, canonical_request(request, signed)
        )
        if not hmac.compare_digest(expected, match["signature"]):
            return aws_error(403, "InvalidSignatureException", SIGNATURE_MISMATCH)
        if access_key in self.sessions:
            token, expires = self.sessions[access_key]
            if request.header("x-amz-security-token") != token:
                return aws_error(
                    403,
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                )
            if now >= expires:
                return aws_error(
                    403,
                    "ExpiredTokenException",
                    "The security token included in the request is expired",
                )
        return None

    # --- STS AssumeRole (Query protocol: a form in, XML out) -----------------------------------

    def serve_sts(self, roles: Iterable[str], lifetime: timedelta = timedelta(hours=1)) -> None:
        """Answer STS AssumeRole at POST / for `roles`: temporary credentials (an ASIA... key,
        its secret and a session token) that sign for this fake's service until they expire."""
        self.roles = set(roles)
        self.role_lifetime = lifetime
        self.route("POST", "/", self.assume_role)

    def assume_role(self, request: Request) -> Reply:
        refusal = self.check_auth(request, "sts")
        if refusal is not None:
            name = refusal.headers["x-amzn-ErrorType"].split(":")[0]
            code = STS_CODES.get(name, name)
            return sts_error(refusal.status, code, refusal.body["message"])
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("Action") != "AssumeRole" or form.get("Version") != "2011-06-15":
            return sts_error(400, "InvalidAction", "Could not find operation for this version.")
        session = form.get("RoleSessionName", "")
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", session):
            return sts_error(400, "ValidationError", "RoleSessionName failed to satisfy constraint")
        role = form.get("RoleArn", "")
        if role not in self.roles:
            return sts_error(
                403,
                "AccessDenied",
                f"User: arn:aws:iam::123456789012:user/caller is not authorized to perform: "
                f"sts:AssumeRole on resource: {role}",
            )
        self.assumed += 1
        access_key = f"ASIA{self.assumed:016d}"
        secret = hashlib.sha256(f"{role}{self.assumed}".encode()).hexdigest()[:40]
        token = "IQoJb3JpZ2luX2Vj" + hashlib.sha256(secret.encode()).hexdigest()
        expires = datetime.now(UTC) + self.skew + self.role_lifetime
        self.keys[access_key] = secret
        self.sessions[access_key] = (token, expires)
        xml = (
            f'<AssumeRoleResponse xmlns="{STS_NAMESPACE}"><AssumeRoleResult>'
            f"<AssumedRoleUser><AssumedRoleId>AROA0000000000000001:{session}</AssumedRoleId>"
            f"<Arn>{role.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/')}/{session}"
            f"</Arn></AssumedRoleUser><Credentials><AccessKeyId>{access_key}</AccessKeyId>"
            f"<SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken>"
            f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration></Credentials>"
            f"</AssumeRoleResult><ResponseMetadata><RequestId>{self.assumed}</RequestId>"
            f"</ResponseMetadata></AssumeRoleResponse>"
        )
        return Reply(200, xml.encode(), content_type="text/xml")

    # --- the base's failure modes, in AWS's shapes ----------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        error_type = STATUS_TYPES.get(status, "InternalServerException")
        return aws_error(status, error_type, message, field=self.error_field)

    def unauthorized(self) -> Reply:
        return aws_error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )

    def presented_key(self, request: Request) -> tuple[str, str]:
        """The access key ID a SigV4 request carries (or a Bearer key), and the whole header."""
        header = request.header("authorization")
        match = _AUTHORIZATION.match(header)
        if match:
            return match["credential"].split("/")[0], header
        return header.removeprefix("Bearer ").strip(), header
