"""Seed the device inventory, device keys and the admin key.

Writes with boto3 directly (following docs/data-model.md) so local tooling
does not depend on chalicelib. Idempotent:

* a device that does not exist is created with ``leases = 0``;
* an existing device keeps its ``leases`` (live rentals) and ``last_seen_ms``;
  its descriptive attributes and ``capacity`` are updated;
* a device key is kept when ``<state_dir>/device_keys.json`` holds a key whose
  sha256 matches the stored ``key_hash``; otherwise a new key is issued. Only
  the sha256 hex of a key is ever stored in the table.
* the admin key in ``<state_dir>/admin_key`` is kept if present.

CLI::

    python -m local.seed --endpoint-url http://127.0.0.1:4566 --prefix si64-local
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

from local.provision import client_kwargs

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
    return [dict(zip(FIELDS, row)) for row in DEVICES]


def new_device_key(device_id: str) -> str:
    return f"dk_{device_id}_{secrets.token_urlsafe(24)}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def ensure_admin_key(state_dir: Path) -> str:
    path = Path(state_dir) / "admin_key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = "ak_" + secrets.token_urlsafe(32)
    _write_secret(path, key + "\n")
    return key


def seed(
    prefix: str = "si64-local",
    endpoint_url: str | None = None,
    capacity: int = 4,
    state_dir: Path | str = ".local",
    region: str | None = None,
) -> dict:
    """Seed devices + keys. Returns {"admin_key", "device_keys": {id: key}}."""
    import boto3

    state_dir = Path(state_dir)
    ddb = boto3.client("dynamodb", **client_kwargs(endpoint_url, region))
    table = f"{prefix}-devices"
    keys_path = state_dir / "device_keys.json"
    known: dict = {}
    if keys_path.exists():
        try:
            known = json.loads(keys_path.read_text()).get(prefix, {})
        except (ValueError, AttributeError):
            known = {}

    device_keys = {}
    for dev in device_dicts():
        did = dev["device_id"]
        current = ddb.get_item(TableName=table, Key={"device_id": {"S": did}}, ConsistentRead=True).get("Item")
        key = known.get(did)
        if current is not None and key and current.get("key_hash", {}).get("S") == key_hash(key):
            pass  # keep the issued key
        else:
            key = new_device_key(did)
        device_keys[did] = key
        if current is None:
            item = {k: {"S": v} for k, v in dev.items()}
            item.update(
                capacity={"N": str(capacity)},
                leases={"N": "0"},
                uptime={"S": "100.0%"},
                audited={"BOOL": True},
                key_hash={"S": key_hash(key)},
            )
            try:
                ddb.put_item(
                    TableName=table, Item=item, ConditionExpression="attribute_not_exists(device_id)"
                )
                continue
            except ddb.exceptions.ConditionalCheckFailedException:
                pass  # appeared meanwhile: fall through to the update
        names = {f"#{k}": k for k in ("name", "tier", "uri", "address", "region", "ram", "capacity", "key_hash")}
        values = {f":{k}": {"S": v} for k, v in dev.items() if k != "device_id"}
        values[":capacity"] = {"N": str(capacity)}
        values[":key_hash"] = {"S": key_hash(key)}
        values[":zero"] = {"N": "0"}
        values[":uptime"] = {"S": "100.0%"}
        values[":true"] = {"BOOL": True}
        ddb.update_item(
            TableName=table,
            Key={"device_id": {"S": did}},
            UpdateExpression=(
                "SET #name = :name, #tier = :tier, #uri = :uri, #address = :address, "
                "#region = :region, #ram = :ram, #capacity = :capacity, #key_hash = :key_hash, "
                "leases = if_not_exists(leases, :zero), uptime = if_not_exists(uptime, :uptime), "
                "audited = if_not_exists(audited, :true)"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    all_keys = {}
    if keys_path.exists():
        try:
            all_keys = json.loads(keys_path.read_text())
        except ValueError:
            all_keys = {}
    all_keys[prefix] = device_keys
    _write_secret(keys_path, json.dumps(all_keys, indent=2) + "\n")
    return {"admin_key": ensure_admin_key(state_dir), "device_keys": device_keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.seed", description=__doc__.split("\n")[0])
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
