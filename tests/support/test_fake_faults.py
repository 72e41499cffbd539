"""The fault hooks the service suite added to FakeDatabase, on its world (tests/services):
`repeat_next` (an SDK retry of a call that landed) and `clear_faults`."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Conflict
from tests.services.conftest import World, make_world
from tests.support.network import SocketBlocker


@pytest.fixture
def w() -> World:
    return make_world()


def test_repeat_next_lands_the_call_then_answers_what_the_resent_call_meets(w: World) -> None:
    req = w.rent_request("M2", 600, 166_667)
    w.db.repeat_next("tx.open_rental")
    with pytest.raises(Conflict) as exc:
        w.claim_elsewhere(req.tx_signature, "rent|x|M2|60", "dev-m2-a")
    assert exc.value.failed == {"claim", "contract", "ledger", "outbox"}  # the resend meets the first's writes
    assert len(w.db.tables["contracts"]) == 1 and w.leases() == {"dev-m2-a": 1}
    assert w.db.calls.count("tx.open_rental") == 1  # one call from the caller's side
    w.claim_elsewhere(w.rent_request("M2", 600, 166_667).tx_signature, "rent|y|M2|60", "dev-m2-b")  # once only


def test_clear_faults_forgets_pending_faults_and_hooks(w: World) -> None:
    w.db.fail_next("tx.open_rental")
    w.db.before_next("tx.open_rental", lambda: pytest.fail("a cleared hook ran"))
    w.db.clear_faults()
    assert w.rentals.rent(w.rent_request("M2", 600, 166_667)).first


def test_this_suite_runs_with_sockets_blocked(no_network: SocketBlocker) -> None:
    import socket

    from tests.support.network import NetworkBlocked

    with pytest.raises(NetworkBlocked):
        socket.create_connection(("127.0.0.1", 9))
    assert no_network.attempts
    no_network.attempts.clear()  # expected here; any other attempt fails the test at teardown
