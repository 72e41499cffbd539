"""Seed the device inventory, device keys and the admin key.

Writes through the app's own devices repository and operator service
(chalicelib), so the item shape, key format and key hash have one definition.
Idempotent:

* a device that does not exist is created with ``leases = 0``;
* an existing device keeps its ``leases`` (live rentals) and ``last_seen_ms``;
  its descriptive attributes and ``capacity`` are updated;
* a device key is kept when ``<state_dir>/device_keys.json`` holds a key whose
  sha256 matches the stored ``key_hash``; otherwise a new key is issued. Only
  the sha256 hex of a key is ever stored in the table.
* the admin key in ``<state_dir>/admin_key`` is kept if present.

CLI::

    python -m dev.seed --endpoint-url http://127.0.0.1:4566 --prefix si64-local
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

from dev.procs import write_private
from dev.provision import client_kwargs

DEVICES = [
    # id, name, uri, address, region, ram, tier
    ("device-m2-001", "M2-DEV-01", "node001.si64.network", "192.168.1.101", "West Coast", "8GB", "M2"),
    ("device-m2-002", "M2-DEV-02", "node002.si64.network", "192.168.1.102", "Central", "8GB", "M2"),
    ("device-m2-003", "M2-DEV-03", "node003.si64.network", "192.168.1.103", "East Coast", "16GB", "M2"),
    ("device-orin-001", "ORIN-CV-01", "node004.si64.network", "192.168.1.201", "Pacific NW", "12GB", "ORIN"),
    ("device-orin-002", "ORIN-CV-02", "node005.si64.network", "192.168.1.202", "Northeast", "12GB", "ORIN"),
    ("device-orin-003", "ORIN-CV-03", "node006.si64.network", "192.168.1.203", "Mountain", "12GB", "ORIN"),
    ("device-orin-004", "ORIN-CV-04", "node007.si64.network", "192.168.1.204", "Pacific NW", "12GB", "ORIN"),
    ("device-m3u-001", "M3U-ULTRA-01", "node008.si64.network", "192.168.1.301", "West Coast", "128GB", "M3_ULTRA"),
    ("device-m3u-002", "M3U-ULTRA-02", "node009.si64.network", "192.168.1.302", "Southeast", "128GB", "M3_ULTRA"),
    ("device-thor-001", "THOR-HPC-01", "node010.si64.network", "192.168.1.401", "Southwest", "144GB", "THOR"),
    ("device-thor-002", "THOR-HPC-02", "node011.si64.network", "192.168.1.402", "Midwest", "144GB", "THOR"),
    ("device-thor-003", "THOR-HPC-03", "node012.si64.network", "192.168.1.403", "Southeast", "144GB", "THOR"),
]
FIELDS = ("device_id", "name", "uri", "address", "region", "ram", "tier")


def device_dicts() -> list[dict]:
    """The inventory as dicts (the shape operator.seed_devices takes)."""
    return [dict(zip(FIELDS, row, strict=True)) for row in DEVICES]


def ensure_admin_key(state_dir: Path) -> str:
    path = Path(state_dir) / "admin_key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = "ak_" + secrets.token_urlsafe(32)
    write_private(path, key + "\n")
    return key


def seed(
    prefix: str = "si64-local",
    endpoint_url: str | None = None,
    capacity: int = 4,
    state_dir: Path | str = ".local",
    region: str | None = None,
) -> dict:
    """Seed devices + keys through the app's own repository and operator service.
    Returns {"admin_key", "device_keys": {id: key}}."""
    from chalicelib import bootstrap
    from chalicelib.config import Settings
    from chalicelib.domain.records import hash_device_key

    kw = client_kwargs(endpoint_url, region)
    if "aws_access_key_id" in kw:  # an emulator and no credentials: the same dummies boto3 gets
        os.environ.setdefault("AWS_ACCESS_KEY_ID", kw["aws_access_key_id"])
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", kw["aws_secret_access_key"])
    c = bootstrap.build(Settings(region=kw["region_name"], aws_endpoint_url=endpoint_url, table_prefix=prefix))
    c.operator.seed_devices(device_dicts(), capacity)

    state_dir = Path(state_dir)
    keys_path = state_dir / "device_keys.json"
    all_keys: dict = {}
    if keys_path.exists():
        try:
            all_keys = json.loads(keys_path.read_text())
        except ValueError:
            all_keys = {}
    known = all_keys.get(prefix) if isinstance(all_keys.get(prefix), dict) else {}
    stored = {d.device_id: d.key_hash for d in c.devices.all()}
    device_keys = {}
    for did in (row[0] for row in DEVICES):
        key = known.get(did)
        if not (key and stored.get(did) == hash_device_key(key)):  # keep a key that still matches
            key = c.operator.issue_device_key(did)
        device_keys[did] = key
    all_keys[prefix] = device_keys
    write_private(keys_path, json.dumps(all_keys, indent=2) + "\n")
    return {"admin_key": ensure_admin_key(state_dir), "device_keys": device_keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.seed", description=__doc__.split("\n")[0])
    stage = os.environ.get("SI64_STAGE", "local")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--prefix", default=os.environ.get("SI64_TABLE_PREFIX") or f"si64-{stage}")
    parser.add_argument("--capacity", type=int, default=int(os.environ.get("SI64_DEVICE_CAPACITY") or 4))
    parser.add_argument("--state-dir", default=os.environ.get("SI64_STATE_DIR") or ".local")
    args = parser.parse_args(argv)
    result = seed(args.prefix, args.endpoint_url, args.capacity, args.state_dir)
    print(json.dumps({"devices": len(result["device_keys"]), "state_dir": args.state_dir}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
