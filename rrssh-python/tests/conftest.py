"""Fixtures: keys made by the `rrssh` CLI, a Rust rrssh server (`fixture_server`, from the
workspace's examples) with routes, the hub relay and terminals, and clients of it.

The Rust binaries are found in `$CARGO_TARGET_DIR` (else the workspace's `target`), debug
build: `cargo build -p rrssh --features cli --bin rrssh -p rrssh-examples --example fixture_server`.
"""

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

import rrssh

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
RRSSH = TARGET / "rrssh"
FIXTURE = TARGET / "examples" / "fixture_server"
USER = os.environ.get("USER") or "rrssh"
os.environ.setdefault("USER", USER)


def _need(path: Path) -> None:
    if not path.exists():
        pytest.exit(
            f"{path} is missing: cargo build -p rrssh --features cli --bin rrssh "
            "-p rrssh-examples --example fixture_server",
            returncode=2,
        )


def skip_for_want_of(tool: str, require_env: str) -> None:
    """Skips a test that needs `tool`, recording it for `scripts/test`'s count; fails instead
    when `require_env` is set (as CI sets it)."""
    if os.environ.get(require_env):
        pytest.fail(f"{tool} is required ({require_env} is set)")
    log = os.environ.get("RRSSH_SKIP_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{tool}\n")
    pytest.skip(f"needs {tool}")


def keygen(path: Path) -> Path:
    _need(RRSSH)
    subprocess.run([str(RRSSH), "keygen", "-f", str(path)], check=True, capture_output=True)
    return path


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _echo(reader, writer) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def echo_server() -> asyncio.Server:
    """A TCP echo server on 127.0.0.1 (a tunnel's target); its port is
    `server.sockets[0].getsockname()[1]`."""
    return await asyncio.start_server(_echo, "127.0.0.1", 0)


class RustServer:
    def __init__(self, dir: Path, port: int = 0) -> None:
        _need(FIXTURE)
        self.dir = dir
        self.key = keygen(dir / "client")
        self.stranger = keygen(dir / "stranger")
        # The client key may call every peer of the hub, serve under any name, and have a terminal.
        (dir / "authorized_keys").write_text('rrssh-scopes="call:*,terminal",rrssh-services="pysvc,billing" ' + (dir / "client.pub").read_text())
        self.port = port
        self.start()
        self.host_pub = dir / "host.pub"
        self.host_key = self.host_pub.read_text().strip()
        self.known_hosts = dir / "known_hosts"
        kind, blob = self.host_key.split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {kind} {blob}\n")

    def start(self) -> None:
        """Starts the server process (again, on the same port and with the same keys)."""
        self.proc = subprocess.Popen(
            [str(FIXTURE), "serve", str(self.dir), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def kill(self) -> None:
        """Kills the server process (SIGKILL: no goodbye to its clients)."""
        self.proc.kill()
        self.proc.wait()

    @property
    def url(self) -> str:
        return f"ssh://{USER}@127.0.0.1:{self.port}"

    async def connect(self, **kw: object) -> rrssh.Client:
        kw.setdefault("identity", str(self.key))
        kw.setdefault("host_key", self.host_key)
        return await rrssh.connect(kw.pop("url", self.url), **kw)  # type: ignore[arg-type]

    def rust_call(self, path: str, peer: "str | None" = None, port: "int | None" = None, host_pub: "Path | None" = None) -> str:
        args = [str(FIXTURE), "call", str(port or self.port), str(self.key), str(host_pub or self.host_pub), path]
        if peer:
            args.append(peer)
        out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)
        return out.stdout.strip()

    def cli(self, *args: str, known_hosts: "Path | None" = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(RRSSH), "call", "-i", str(self.key), "--known-hosts", str(known_hosts or self.known_hosts), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = RustServer(tmp_path_factory.mktemp("server"))
    yield s
    s.stop()
