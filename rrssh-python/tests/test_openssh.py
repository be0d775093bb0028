"""Terminals and tunnels from Python to a stock OpenSSH `sshd` (`connect(…, plain=True)`):
with a key, with a password (given, or asked for by a callback), through an ssh config alias
and a jump host, and what a plain connection refuses.

The private `sshd` listens on 127.0.0.1 with its own host key and authorized_keys. For the
password logins it runs in a mount namespace of its own where `/etc/shadow` is a copy giving
the test user a password (nothing on the machine changes); that needs root, as sshd itself does
to check passwords."""

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

import rrssh
from conftest import echo_server, free_port, keygen, skip_for_want_of

PASSWORD = "correct horse battery staple"
# sshd logs in system users: the one running the tests.
USER = pwd.getpwuid(os.getuid()).pw_name


def _sshd() -> str:
    path = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if path is None:
        skip_for_want_of("OpenSSH's sshd (apt-get install openssh-server)", "RRSSH_REQUIRE_OPENSSH")
    return path


class Sshd:
    """A private sshd; with `passwords`, in a mount namespace where the user has `PASSWORD`."""

    def __init__(self, dir: Path, passwords: bool) -> None:
        sshd = _sshd()
        self.dir = dir
        self.key = keygen(dir / "id_client")
        host = keygen(dir / "host")
        (dir / "authorized_keys").write_text((dir / "id_client.pub").read_text())
        self.port = free_port()
        self.host_key = (dir / "host.pub").read_text().strip()
        kind, blob = self.host_key.split()[:2]
        self.known_hosts = dir / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        yes_no = "yes" if passwords else "no"
        (dir / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host}\n"
            f"AuthorizedKeysFile {dir}/authorized_keys\nPidFile {dir}/sshd.pid\nStrictModes no\n"
            f"UsePAM no\nPasswordAuthentication {yes_no}\nKbdInteractiveAuthentication no\n"
            f"PubkeyAuthentication yes\nPermitRootLogin yes\nPermitEmptyPasswords no\n"
            "AllowTcpForwarding yes\nLogLevel ERROR\n"
        )
        argv = [sshd, "-D", "-e", "-f", str(dir / "sshd_config")]
        if passwords:
            argv = self._with_password(argv)
        os.makedirs("/run/sshd", exist_ok=True) if os.geteuid() == 0 else None
        self.proc = subprocess.Popen(argv, stderr=open(dir / "sshd.log", "wb"))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {(dir / 'sshd.log').read_text()}")
                time.sleep(0.02)

    def _with_password(self, argv: list) -> list:
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            skip_for_want_of("root and unshare(1), for sshd to check a password", "RRSSH_REQUIRE_OPENSSH")
        # The copy of /etc/shadow gives the user PASSWORD, seen only by this sshd.
        digest = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"], input=PASSWORD, capture_output=True, text=True, check=True
        ).stdout.strip()
        lines = Path("/etc/shadow").read_text().splitlines()
        shadow = [line for line in lines if not line.startswith(f"{USER}:")]
        shadow.append(f"{USER}:{digest}:19000:0:99999:7:::")
        (self.dir / "shadow").write_text("\n".join(shadow) + "\n")
        os.chmod(self.dir / "shadow", 0o600)
        script = f'mount --bind "{self.dir}/shadow" /etc/shadow && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]

    def url(self) -> str:
        return f"ssh://{USER}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    s = Sshd(tmp_path_factory.mktemp("sshd"), passwords=False)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def sshd_passwords(tmp_path_factory):
    if shutil.which("openssl") is None:
        skip_for_want_of("openssl (to hash the test password)", "RRSSH_REQUIRE_OPENSSH")
    s = Sshd(tmp_path_factory.mktemp("sshd-pw"), passwords=True)
    yield s
    s.stop()


async def _shell_works(client: rrssh.Client) -> None:
    """A terminal: a command's output, a window size, and the exit status."""
    term = await client.terminal(100, 30, idle_timeout=30)
    assert term.is_open
    await term.write(b"stty size; echo ready-$((6*7))\n")
    out = b""
    while b"ready-42" not in out:
        chunk = await term.read(timeout=10)
        assert chunk, f"no prompt output in time: {out!r}"
        out += chunk
    assert b"30 100" in out
    await term.write(b"exit 7\n")
    while (chunk := await term.read(timeout=10)) is not None:
        assert chunk != b"", "the session did not end"
    assert term.exit_status == 7 and not term.is_open and not term.timed_out


async def _tunnel_works(client: rrssh.Client) -> None:
    """`ssh -L` and `ssh -R`: bytes through sshd to a local echo server and back."""

    target = await echo_server()
    try:
        fwd = await client.forward_local("127.0.0.1", target.sockets[0].getsockname()[1])
        reader, writer = await asyncio.open_connection(*fwd.address)
        payload = os.urandom(256 * 1024)
        writer.write(payload)
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
        assert fwd.opened == 1
        writer.close()
        fwd.close()
        assert fwd.address is None
        # The other way: sshd listens, and what comes in there reaches the echo server here.
        rev = await client.forward_remote("127.0.0.1", target.sockets[0].getsockname()[1])
        assert rev.port
        reader, writer = await asyncio.open_connection("127.0.0.1", rev.port)
        writer.write(payload)
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
        writer.close()
        rev.close()
        assert rev.port is None
    finally:
        target.close()


async def test_a_key_gives_a_terminal_and_a_tunnel_on_a_stock_sshd(sshd):
    c = await rrssh.connect(sshd.url(), identity=str(sshd.key), host_key=sshd.host_key, agent=False, ssh_config="none", plain=True)
    async with c:
        info = c.info()
        assert info["api"] is False and info["connected"] and info["port"] == sshd.port
        await _shell_works(c)
        await _tunnel_works(c)
        # No rrssh API on a plain connection: calls say so.
        with pytest.raises(rrssh.Unavailable):
            await c.get("/hello")


async def test_without_plain_a_stock_sshd_is_named_for_what_it_is(sshd):
    with pytest.raises(rrssh.Unavailable, match="no rrssh API"):
        await rrssh.connect(sshd.url(), identity=str(sshd.key), host_key=sshd.host_key, agent=False, ssh_config="none")


async def test_a_password_gives_a_terminal_and_a_tunnel(sshd_passwords):
    s = sshd_passwords
    c = await rrssh.connect(s.url(), password=PASSWORD, host_key=s.host_key, agent=False, ssh_config="none", plain=True)
    async with c:
        await _shell_works(c)
        await _tunnel_works(c)
    with pytest.raises(rrssh.AuthError, match="password"):
        await rrssh.connect(s.url(), password="wrong", host_key=s.host_key, agent=False, ssh_config="none", plain=True)


async def test_a_password_is_asked_for_only_when_needed(sshd_passwords):
    s = sshd_passwords
    prompts = []

    def ask(prompt: str):
        prompts.append(prompt)
        return PASSWORD

    # The key is enough: no question.
    c = await rrssh.connect(s.url(), identity=str(s.key), ask_password=ask, host_key=s.host_key, agent=False, ssh_config="none", plain=True)
    await c.close()
    assert prompts == []
    # No key: asked once, and the answer logs in.
    c = await rrssh.connect(s.url(), ask_password=ask, host_key=s.host_key, agent=False, ssh_config="none", plain=True)
    async with c:
        await _shell_works(c)
    assert len(prompts) == 1 and "password" in prompts[0].lower()
    # Giving up (None) is a refused login, not a hang.
    with pytest.raises(rrssh.AuthError):
        await rrssh.connect(s.url(), ask_password=lambda _: None, host_key=s.host_key, agent=False, ssh_config="none", plain=True)


async def test_an_ssh_config_alias_through_a_jump_host(sshd, tmp_path):
    # The alias names the host, port, user, key and known_hosts; ProxyJump goes through the
    # same sshd first (a direct-tcpip channel to itself), as `ssh -J` would.
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host box\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {USER}\n"
        f"  IdentityFile {sshd.key}\n  UserKnownHostsFile {sshd.known_hosts}\n"
        f"  ProxyJump {USER}@127.0.0.1:{sshd.port}\n"
        f"Host 127.0.0.1\n  User {USER}\n  IdentityFile {sshd.key}\n  UserKnownHostsFile {sshd.known_hosts}\n"
    )
    c = await rrssh.connect("ssh://box", ssh_config=str(config), agent=False, plain=True)
    async with c:
        assert c.info()["host"] == "box"
        await _shell_works(c)
    # A jump given as an argument works the same, and a bad one is a clear error.
    c = await rrssh.connect(sshd.url(), ssh_config=str(config), jump=f"127.0.0.1:{sshd.port}", agent=False, plain=True)
    await c.close()
    with pytest.raises(rrssh.AuthError, match="bad jump host"):
        await rrssh.connect(sshd.url(), ssh_config=str(config), jump="127.0.0.1:notaport", agent=False, plain=True)


async def test_terminal_errors_are_typed_and_idle_sessions_end_with_a_status(sshd):
    c = await rrssh.connect(sshd.url(), identity=str(sshd.key), host_key=sshd.host_key, agent=False, ssh_config="none", plain=True)
    async with c:
        term = await c.terminal(idle_timeout=0.5)
        # Nothing typed, the shell's prompt printed once: hung up after half a second.
        while (chunk := await term.read(timeout=5)) is not None:
            assert chunk != b"", "the idle session was not hung up"
        assert term.timed_out and not term.is_open
        assert term.exit_status == 255, "a session hung up without a status ends as ssh's 255"
        with pytest.raises(rrssh.TerminalClosed):
            await term.write(b"echo late\n")
        with pytest.raises(ValueError):
            await c.terminal(idle_timeout=0)


def test_the_sync_facade_drives_a_terminal_on_a_stock_sshd(sshd):
    import rrssh.sync

    with rrssh.sync.connect(sshd.url(), identity=str(sshd.key), host_key=sshd.host_key, agent=False, ssh_config="none", plain=True) as c:
        assert c.is_connected and c.info()["api"] is False
        with c.terminal(command="echo sync-$((6*7)); exit 4") as term:
            out = b""
            while (chunk := term.read(timeout=10)) is not None:
                out += chunk
            assert b"sync-42" in out
            assert term.exit_status == 4


async def test_the_ssh_agent_logs_in(sshd, tmp_path, monkeypatch):
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        skip_for_want_of("OpenSSH's ssh-agent and ssh-add (apt-get install openssh-client)", "RRSSH_REQUIRE_OPENSSH")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(250):
            if sock.exists():
                break
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(sshd.key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        # No key file given, no default key: only the agent holds it (used by default, as ssh does).
        monkeypatch.setenv("HOME", str(tmp_path))
        c = await rrssh.connect(sshd.url(), host_key=sshd.host_key, ssh_config="none", plain=True)
        async with c:
            await _tunnel_works(c)
        # Told not to ask the agent: nothing left to log in with.
        with pytest.raises(rrssh.AuthError):
            await rrssh.connect(sshd.url(), host_key=sshd.host_key, ssh_config="none", agent=False, plain=True)
    finally:
        agent.kill()
        agent.wait()
