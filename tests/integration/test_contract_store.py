"""adapters/contracts.py on moto: every payment is kept, and the sparse-index reads."""

from __future__ import annotations

from solders.keypair import Keypair

from chalicelib.domain.signing import extend_memo
from chalicelib.domain.storage import shard_of
from si64.renter import renter_headers

from .test_lifecycle_moto import rent


def test_loading_a_contract_keeps_its_extension_payments(api):
    kp = Keypair()
    (st, body), req = rent(api, tier="ORIN", hours=1, wallet=str(kp.pubkey()))
    cid, wallet = body["contract_id"], req["wallet"]
    sigs = [req["tx_signature"]]
    for hours, lamports in ((1, 4_000_000), (0.5, 2_100_000)):
        seconds = int(hours * 3600)
        sigs.append(api.c.rpc.pay(wallet, lamports, memo=extend_memo(cid, seconds)))
        st, ext = api.post(f"/api/contracts/{cid}/extend", {"additional_hours": hours, "tx_signature": sigs[-1]})
        assert st == 200, ext
    k = api.c.contracts.get(cid)
    assert [p.sig for p in k.payments] == sigs
    assert [(p.kind, p.seconds, p.price_lamports, p.received_lamports) for p in k.payments] == [
        ("rent", 3600, 4_000_000, 4_000_000),
        ("extend", 3600, 4_000_000, 4_000_000),
        ("extend", 1800, 2_000_000, 2_100_000),
    ]
    assert sum(p.received_lamports for p in k.payments) == k.received_lamports
    # the payments survive the settlement write too
    path = f"/api/contracts/{cid}/settle"
    assert api.post(path, raw="", headers=renter_headers(kp, "POST", path, ts=api.c.clock() // 1000))[0] == 200
    assert [p.sig for p in api.c.contracts.get(cid).payments] == sigs


def test_due_and_refunds_owed_read_the_sparse_indexes(api):
    kp = Keypair()
    made = [rent(api, hours=h, wallet=str(kp.pubkey()))[0][1] for h in (1, 2)]
    shards = api.c.contracts.shards
    now = api.c.clock()
    assert all(api.c.contracts.due(s, now, 10) == [] for s in range(shards))
    later = now + 2 * 3600 * 1000
    due = [k for s in range(shards) for k in api.c.contracts.due(s, later, 10)]
    assert sorted(k.contract_id for k in due) == sorted(b["contract_id"] for b in made)
    one = made[0]["contract_id"]
    assert [k.contract_id for k in api.c.contracts.due(shard_of(one, shards), now + 3600 * 1000, 10)] == [one]

    api.c.clock.advance(600)
    path = f"/api/contracts/{one}/settle"
    assert api.post(path, raw="", headers=renter_headers(kp, "POST", path, ts=api.c.clock() // 1000))[0] == 200
    s = shard_of(one, shards)
    owed = api.c.contracts.refunds_owed(s, api.c.clock(), 10)
    assert [k.contract_id for k in owed] == [one] and owed[0].refund_status == "QUEUED"
    assert api.c.contracts.refunds_owed(s, api.c.clock() - 1, 10) == []
    assert one not in [k.contract_id for k in api.c.contracts.due(s, later, 10)]  # no longer ACTIVE
