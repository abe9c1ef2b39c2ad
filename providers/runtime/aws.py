"""What the AWS families (Bedrock, SageMaker) share: SigV4 signing, AWS's error conventions and
the binary event stream (application/vnd.amazon.eventstream) their streaming calls answer in.

Signing is botocore's own (`SigV4Auth` over an `AWSRequest`), run by the `sign` hook for every
attempt, since a signature holds the time. Credentials come from the form only: botocore's
default chain (environment, ~/.aws, the instance metadata service) is never used, because those
are the server's own AWS identity, which no workspace may borrow, and the metadata address is
refused by the outbound address guard anyway.

Errors: AWS names the error in the `x-amzn-ErrorType` header (`Name:namespace`) and puts its text
in `{"message"}` (`{"Message"}` for SageMaker); `ERROR_TYPES` refines the status mapping by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, ParserError

from config import errors
from providers.runtime.base import Adapter
from providers.runtime.http import Response

DEFAULT_REGION = "us-east-1"

# AWS error names (x-amzn-ErrorType, or an event stream's :exception-type) -> our error class,
# where the status alone says otherwise: ModelNotReady is a 429 that waiting fixes, ModelTimeout
# a 408, ModelError a 424 (the model container failed), ServiceQuotaExceeded a 400 that a slower
# pace fixes. Names are compared without case (streams send them lower camel case).
ERROR_TYPES: dict[str, type[errors.UpstreamError]] = {
    "accessdeniedexception": errors.UpstreamAuth,
    "unrecognizedclientexception": errors.UpstreamAuth,
    "invalidsignatureexception": errors.UpstreamAuth,
    "expiredtokenexception": errors.UpstreamAuth,
    "missingauthenticationtokenexception": errors.UpstreamAuth,
    "throttlingexception": errors.UpstreamRateLimited,
    "servicequotaexceededexception": errors.UpstreamRateLimited,
    "modelnotreadyexception": errors.UpstreamUnavailable,
    "modeltimeoutexception": errors.UpstreamTimeout,
    "modelerrorexception": errors.UpstreamUnavailable,
    "modelstreamerrorexception": errors.UpstreamConnection,
    "internalserverexception": errors.UpstreamUnavailable,
    "serviceunavailableexception": errors.UpstreamUnavailable,
    "resourcenotfoundexception": errors.UpstreamNotFound,
    "validationexception": errors.UpstreamBadRequest,
    # SageMaker Runtime's names
    "validationerror": errors.UpstreamBadRequest,
    "modelerror": errors.UpstreamUnavailable,
    "modelstreamerror": errors.UpstreamConnection,
    "internalstreamfailure": errors.UpstreamUnavailable,
    "internalfailure": errors.UpstreamUnavailable,
    "serviceunavailable": errors.UpstreamUnavailable,
    "internaldependencyexception": errors.UpstreamUnavailable,
}
# Text that turns a bad request into "no such model or endpoint" (Bedrock: "The provided model
# identifier is invalid."; SageMaker: "Endpoint x of account 1234 not found.").
NOT_FOUND = re.compile(r"model identifier is invalid|endpoint \S+ of account \S+ not found", re.I)


def regional_url(template: str, region: str) -> str:
    """A regional endpoint from its template; China's regions are under amazonaws.com.cn."""
    url = template.format(region=region)
    if region.startswith("cn-") and ".amazonaws.com.cn" not in url:
        url = url.replace(".amazonaws.com", ".amazonaws.com.cn", 1)
    return url


def error_type(response: Response) -> str:
    """The AWS error name of a failed answer: `x-amzn-ErrorType` without its namespace, else
    the body's `__type` or `code`."""
    name = response.headers.get("x-amzn-ErrorType", "")
    if not name:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            name = str(body.get("__type") or body.get("code") or body.get("ErrorCode") or "")
    return name.split(":", 1)[0].rsplit("#", 1)[-1].strip()


def typed_error(
    name: str,
    message: str,
    retry_after: float | None = None,
    unknown: type[errors.UpstreamError] = errors.UpstreamUnavailable,
) -> errors.UpstreamError:
    """The error an AWS error name stands for (`unknown` for a name not in ERROR_TYPES), its
    name kept in the message."""
    cls = ERROR_TYPES.get(name.lower(), unknown)
    if cls is errors.UpstreamBadRequest and NOT_FOUND.search(message):
        cls = errors.UpstreamNotFound
    text = f"{message} ({name})" if name and name not in message else message
    if cls is errors.UpstreamRateLimited:
        return errors.UpstreamRateLimited(text, retry_after=retry_after)
    return cls(text)


class AwsAdapter(Adapter):
    """The AWS base: region, regional base URL, SigV4 (or a Bearer key) and AWS errors.

    Credentials: `access_key_id`, `secret_access_key` (SigV4 with the manifest's `service`
    option), `region`. Options: `service`, `regional_base_url` (`{region}` filled in)."""

    service: ClassVar[str] = ""

    @property
    def region(self) -> str:
        found = self.endpoint.credentials.get("region") or self.endpoint.options.get("region")
        return str(found or DEFAULT_REGION).strip()

    def base_url(self) -> str:
        given = str(self.endpoint.credentials.get("base_url") or "").strip()
        if given:
            return given.rstrip("/")
        regional = self.endpoint.options.get("regional_base_url")
        if regional:
            return regional_url(str(regional), self.region)
        return self.endpoint.base_url

    def signing_keys(self) -> Credentials:
        """The form's access key pair; without one there is nothing to sign with (see the
        module docstring for why no other source is tried)."""
        access_key = str(self.endpoint.credentials.get("access_key_id") or "").strip()
        secret_key = str(self.endpoint.credentials.get("secret_access_key") or "").strip()
        if not (access_key and secret_key):
            raise errors.InvalidInput(
                "Enter an AWS access key ID and secret access key: credentials from the "
                "server's own environment or instance role are not used for workspaces.",
                code="unsupported",
            )
        return Credentials(access_key, secret_key)

    def sign(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        service = str(self.endpoint.options.get("service") or self.service)
        SigV4Auth(self.signing_keys(), service, self.region).add_auth(request)
        return dict(request.headers.items())

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict):
            return str(body.get("message") or body.get("Message") or body)
        return str(body)

    def classify(self, response: Response, failure: errors.UpstreamError) -> errors.UpstreamError:
        name = error_type(response)
        if not name:
            return failure
        return typed_error(
            name, failure.message, getattr(failure, "retry_after", None), unknown=type(failure)
        )

    # --- the event stream ---------------------------------------------------------------------

    def events(self, response: Response) -> Iterator[tuple[str, str, bytes]]:
        """(message type, event or exception name, payload) of each event stream message, as
        it arrives; a message that fails its CRC, or a stream cut inside one, is an error."""
        buffer = EventStreamBuffer()
        unparsed = 0  # bytes received and not yet part of a whole message
        try:
            for chunk in self.http.chunks(response):
                buffer.add_data(chunk)
                unparsed += len(chunk)
                for message in buffer:
                    unparsed -= message.prelude.total_length
                    headers = message.headers
                    kind = str(headers.get(":message-type", "event"))
                    name = headers.get(":event-type") or headers.get(":exception-type")
                    if kind == "error":  # a transport error: its code and text in headers
                        name = headers.get(":error-code", "")
                        yield kind, str(name), str(headers.get(":error-message", "")).encode()
                    else:
                        yield kind, str(name or ""), message.payload
        except ParserError as exc:
            raise errors.UpstreamUnavailable(
                f"The backend's event stream is damaged: {self.http.bounded(str(exc))}"
            ) from exc
        if unparsed:
            raise errors.UpstreamConnection("The event stream ended in the middle of a frame.")

    def stream_error(self, kind: str, name: str, payload: bytes) -> errors.UpstreamError:
        """An exception (or error) message inside a stream, as its error class."""
        try:
            data = json.loads(payload or b"{}")
        except ValueError:
            data = payload.decode("utf-8", errors="replace")
        message = self.http.bounded(self.error_message(data) if data else kind)
        return typed_error(name or kind, message)
