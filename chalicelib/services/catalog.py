"""Public catalogue: health, pricing, devices of a tier."""
from __future__ import annotations

from ..domain import money, views
from ..domain.errors import NotFound


def health(c) -> dict:
    c.devices.get("__health__")  # one read; raises Unavailable when the table does not answer
    return {"status": "ok"}


def pricing(c) -> dict:
    s = c.settings
    return {
        "treasury": s.treasury, "network": s.network,
        "tiers": [{"tier": t.name, "lamports_per_hour": t.lamports_per_hour,
                   "sol_per_hour": money.sol(t.lamports_per_hour), "memory": t.memory}
                  for t in money.TIERS.values()],
        "min_duration_seconds": s.min_duration_seconds, "max_duration_hours": s.max_duration_hours,
        "refund_min_lamports": s.refund_min_lamports, "payment_max_age_seconds": s.payment_max_age_seconds,
    }


def devices(c, tier: str) -> list[dict]:
    if tier not in money.TIERS:
        raise NotFound(f"No such tier; tiers are {', '.join(money.TIERS)}.", reason="tier")
    return [views.device_view(d) for d in sorted(c.devices.by_tier(tier), key=lambda d: d.device_id)]
