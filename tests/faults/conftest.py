"""The fault suite runs socket-free on the fakes (tests/faults/harness.py); the few cases a
fake cannot represent run on in-process moto (test_dynamodb_moto.py) or against a slow
JSON-RPC server on 127.0.0.1 (test_rpc_slow.py), which allow what they need themselves."""

from tests.support.network import no_network  # noqa: F401  (autouse: sockets blocked)
