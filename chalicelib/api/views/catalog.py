"""The catalogue's shapes: a device, the pricing, the public fleet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...domain.money import sol

if TYPE_CHECKING:  # types only
    from ...config import Settings
    from ...domain.devices import Device
    from ...domain.money import Tier
    from ...services.fleet import FleetView


def device_view(d: Device) -> dict[str, Any]:
    return {
        "id": d.device_id,
        "name": d.name,
        "tier": d.tier,
        "uri": d.uri,
        "address": d.address,
        "region": d.region,
        "ram": d.ram,
        "leases": d.leases,
        "capacity": d.capacity,
        "available": d.available,
        "uptime": d.uptime,
        "audited": d.audited,
        "pubkey": d.pubkey,  # ed25519 (base58) that signs its usage receipts; None: it sends none
        "previous_pubkeys": list(d.previous_pubkeys),
    }


def pricing_response(s: Settings, tiers: list[Tier]) -> dict[str, Any]:
    return {
        "treasury": s.treasury,
        "network": s.network,
        "tiers": [
            {
                "tier": t.name,
                "lamports_per_hour": t.lamports_per_hour,
                "sol_per_hour": sol(t.lamports_per_hour),
                "memory": t.memory,
            }
            for t in tiers
        ],
        "min_duration_seconds": s.min_duration_seconds,
        "max_duration_hours": s.max_duration_hours,
        "refund_min_lamports": s.refund_min_lamports,
        "payment_max_age_seconds": s.payment_max_age_seconds,
    }


def fleet_response(f: FleetView, now_ms: int) -> dict[str, Any]:
    """services.fleet.FleetView → the public fleet shape: prices, devices and slots, no money moved."""
    return {
        "tiers": [
            {
                "tier": t.tier.name,
                "lamports_per_hour": t.tier.lamports_per_hour,
                "sol_per_hour": sol(t.tier.lamports_per_hour),
                "memory": t.tier.memory,
                "devices": t.devices,
                "slots": t.slots,
                "slots_free": t.slots_free,
            }
            for t in f.tiers
        ],
        "server_time": now_ms // 1000,
    }
