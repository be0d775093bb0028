"""OpenSSH certificates from Python: a key signed by `rrssh ca sign` logs in to `rrssh serve
--trusted-user-ca` with `rrssh.connect(identity=KEY)`, which finds `KEY-cert.pub` beside the key
as `ssh` does; without the certificate the same key is refused."""

import asyncio
import subprocess
from pathlib import Path

import pytest

import rrssh
from conftest import RRSSH, USER, echo_server, free_port, keygen

pytestmark = pytest.mark.asyncio


def _rrssh(*args: str) -> str:
    return subprocess.run([str(RRSSH), *args], check=True, capture_output=True, text=True).stdout


async def test_a_certificate_beside_the_key_logs_in_and_the_key_alone_does_not(tmp_path: Path) -> None:
    key = keygen(tmp_path / "device")
    _rrssh("ca", "init", "-f", str(tmp_path / "ca"))
    said = _rrssh("ca", "sign", "--ca", str(tmp_path / "ca"), "-n", USER, "-I", "py-device", "--ttl", "10m",
                  str(tmp_path / "device.pub"))
    assert "py-device" in said, said
    (tmp_path / "authorized_keys").write_text("")
    target = await echo_server()
    echo_port = target.sockets[0].getsockname()[1]
    port = free_port()
    server = subprocess.Popen(
        [str(RRSSH), "serve", "--listen", f"127.0.0.1:{port}", "--create-host-key", "--host-key", str(tmp_path / "host"),
         "--authorized-keys", str(tmp_path / "authorized_keys"), "--trusted-user-ca", str(tmp_path / "ca.pub"),
         "--permit-open", f"127.0.0.1:{echo_port}"],
        stdout=subprocess.PIPE,
        text=True,
        env={"USER": USER, "PATH": "/usr/bin:/bin"},
    )
    try:
        assert server.stdout is not None
        line = await asyncio.to_thread(server.stdout.readline)
        assert "listening" in line, line
        host_key = (tmp_path / "host.pub").read_text().strip()
        url = f"ssh://{USER}@127.0.0.1:{port}"
        async with await rrssh.connect(url, identity=str(key), host_key=host_key) as c:
            fwd = await c.forward_local("127.0.0.1", echo_port)
            reader, writer = await asyncio.open_connection(*fwd.address)
            writer.write(b"signed by the fleet CA")
            await writer.drain()
            assert await reader.readexactly(22) == b"signed by the fleet CA"
            writer.close()
            fwd.close()
        # The same key without its certificate: nobody this server knows.
        (tmp_path / "device-cert.pub").rename(tmp_path / "put-away-cert.pub")
        with pytest.raises(rrssh.Error):
            await rrssh.connect(url, identity=str(key), host_key=host_key, timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=10)
        target.close()
