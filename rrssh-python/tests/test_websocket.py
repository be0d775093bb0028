"""SSH over WebSocket and TLS from Python: `rrssh.connect("wss://…", tls_ca=…)` to the `rrssh`
CLI's `serve --https`, a tunnel through it, and a certificate the client does not trust."""

import asyncio
import subprocess
from pathlib import Path

import pytest

import rrssh
from conftest import RRSSH, USER, echo_server, free_port, keygen, skip_for_want_of

pytestmark = pytest.mark.asyncio


def _openssl(dir: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=dir, check=True, capture_output=True)


def _certificate(dir: Path) -> None:
    """A private CA (`ca.pem`) and a certificate it signed for 127.0.0.1."""
    (dir / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(dir, "req", "-x509", *ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA")
    _openssl(dir, "req", *ec, "-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=hub")
    _openssl(dir, "x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
             "-out", "cert.pem", "-days", "2", "-extfile", "san.ext")


async def test_a_client_over_wss_opens_a_tunnel_and_refuses_an_unknown_ca(tmp_path: Path) -> None:
    try:
        subprocess.run(["openssl", "version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        skip_for_want_of("openssl", "RRSSH_REQUIRE_OPENSSH")
    _certificate(tmp_path)
    key = keygen(tmp_path / "client")
    (tmp_path / "authorized_keys").write_text((tmp_path / "client.pub").read_text())
    target = await echo_server()
    echo_port = target.sockets[0].getsockname()[1]
    https = free_port()
    server = subprocess.Popen(
        [str(RRSSH), "serve", "--listen", f"127.0.0.1:{free_port()}", "--create-host-key", "--host-key", str(tmp_path / "host"),
         "--authorized-keys", str(tmp_path / "authorized_keys"), "--https", f"127.0.0.1:{https}",
         "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"),
         "--permit-open", f"127.0.0.1:{echo_port}"],
        stdout=subprocess.PIPE,
        text=True,
        env={"USER": USER, "PATH": "/usr/bin:/bin"},
    )
    try:
        assert server.stdout is not None
        for _ in range(2):
            line = await asyncio.to_thread(server.stdout.readline)
        assert "wss://" in line, line
        host_key = (tmp_path / "host.pub").read_text().strip()
        url = f"wss://{USER}@127.0.0.1:{https}"
        async with await rrssh.connect(url, identity=str(key), host_key=host_key, tls_ca=str(tmp_path / "ca.pem")) as c:
            assert c.info()["connected"]
            fwd = await c.forward_local("127.0.0.1", echo_port)
            reader, writer = await asyncio.open_connection(*fwd.address)
            writer.write(b"over wss from python")
            await writer.drain()
            assert await reader.readexactly(20) == b"over wss from python"
            writer.close()
            fwd.close()
        # The system's authorities do not know the private CA: a clear error, not a hang.
        with pytest.raises(rrssh.Error) as err:
            await rrssh.connect(url, identity=str(key), host_key=host_key, timeout=5)
        assert "TLS" in str(err.value), err.value
        with pytest.raises(ValueError):
            await rrssh.connect("hub+wss://127.0.0.1", identity=str(key))
    finally:
        server.terminate()
        server.wait(timeout=10)
        target.close()
