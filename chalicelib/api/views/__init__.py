"""The JSON shapes of docs/api.md, built from domain objects and service results. Pure Python.

One module per resource: `contracts` (status, settle, a usage report's answer), `samples`,
`catalog` (devices, pricing, fleet), `books` (ledger, entries, stats), `operators` (refund
records, a retried refund, the reconciliation; imported as a module by the operator routes).
`views.<name>` works for the names below and loads only that name's module (so the status
route's cold start does not pay for the books' shapes).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the type checker sees; at run time `__getattr__` below loads each on first use
    from .books import entries_response as entries_response
    from .books import entry_view as entry_view
    from .books import ledger_response as ledger_response
    from .books import stats_response as stats_response
    from .catalog import device_view as device_view
    from .catalog import fleet_response as fleet_response
    from .catalog import pricing_response as pricing_response
    from .contracts import contract_response as contract_response
    from .contracts import coverage_view as coverage_view
    from .contracts import metrics_response as metrics_response
    from .contracts import refund_view as refund_view
    from .contracts import settle_response as settle_response
    from .samples import SAMPLE_VIEW_FIELDS as SAMPLE_VIEW_FIELDS
    from .samples import sample_view as sample_view
    from .samples import samples_response as samples_response

_MODULE_OF = {
    "refund_view": "contracts",
    "contract_response": "contracts",
    "coverage_view": "contracts",
    "settle_response": "contracts",
    "metrics_response": "contracts",
    "SAMPLE_VIEW_FIELDS": "samples",
    "sample_view": "samples",
    "samples_response": "samples",
    "device_view": "catalog",
    "pricing_response": "catalog",
    "fleet_response": "catalog",
    "entry_view": "books",
    "entries_response": "books",
    "ledger_response": "books",
    "stats_response": "books",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(importlib.import_module(f"{__name__}.{module}"), name)  # once
    return value
