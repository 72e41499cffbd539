"""adapters/dynamo.py: which DynamoDB failures are outages (503) and which stay bugs (500)."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from pynamodb.exceptions import GetError, PutError, PynamoDBException, QueryError, ScanError, TransactWriteError

from chalicelib.adapters import dynamo
from chalicelib.domain.errors import Unavailable

URL = "http://127.0.0.1:9"


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "secret"}}, "GetItem")


CONNECTION_LEVEL = [
    EndpointConnectionError(endpoint_url=URL),
    ConnectTimeoutError(endpoint_url=URL),
    ReadTimeoutError(endpoint_url=URL),
    ConnectionClosedError(endpoint_url=URL),
]
NOT_OUTAGES = [
    client_error("ValidationException"),
    client_error("AccessDeniedException"),
    client_error("UnrecognizedClientException"),
    client_error("ConditionalCheckFailedException"),
    client_error("SerializationException"),
    ParamValidationError(report="bad"),
    NoCredentialsError(),
]


@pytest.mark.parametrize("wrapper", [GetError, PutError, QueryError, ScanError, TransactWriteError])
@pytest.mark.parametrize("cause", CONNECTION_LEVEL + [client_error(c) for c in sorted(dynamo.UNAVAILABLE_CODES)])
def test_outages_become_unavailable(wrapper, cause):
    out = dynamo.translate(wrapper("failed", cause))
    assert isinstance(out, Unavailable) and out.reason == "database"
    assert "secret" not in out.detail


@pytest.mark.parametrize("wrapper", [GetError, QueryError, TransactWriteError])
@pytest.mark.parametrize("cause", NOT_OUTAGES + [None])
def test_everything_else_stays_what_it_is(wrapper, cause):
    exc = wrapper("failed", cause)
    assert dynamo.translate(exc) is exc


@pytest.mark.parametrize("cause", CONNECTION_LEVEL)
def test_bare_botocore_connection_errors_are_outages(cause):
    assert isinstance(dynamo.translate(cause), Unavailable)


def test_guarded_translates_outages_and_reraises_bugs():
    @dynamo.guarded
    def down():
        raise GetError("failed", EndpointConnectionError(endpoint_url=URL))

    @dynamo.guarded
    def bug():
        raise GetError("failed", client_error("ValidationException"))

    with pytest.raises(Unavailable) as exc:
        down()
    assert isinstance(exc.value.__cause__, GetError)
    with pytest.raises(GetError):
        bug()
    with pytest.raises(PynamoDBException):
        dynamo.guarded(lambda: (_ for _ in ()).throw(PynamoDBException("no cause")))()


def test_guarded_refuses_generators():
    """A generator's body runs after the wrapper returned: an outage there would escape as a 500."""
    with pytest.raises(TypeError, match="generator"):

        @dynamo.guarded
        def rows():
            yield 1
