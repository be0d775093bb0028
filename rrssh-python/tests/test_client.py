"""Calling a Rust rrssh server from Python: calls, streams, deadlines, cancellation, every
exception, terminals, and the same calls over a spawned OpenSSH `ssh`."""

import asyncio
import os
import shutil
import socket
import subprocess

import pytest

import rrssh
from conftest import echo_server, skip_for_want_of


async def test_calls(server):
    async with await server.connect() as c:
        assert await c.get("/hello") == {"msg": "Hello World!"}
        body = {"id": 7, "name": "ünïcode ✓", "tags": ["a", "b"], "nested": {"x": 1.5}, "none": None}
        assert await c.post("/echo", body) == body
        who = await c.get("/whoami")
        assert who["user"] == os.environ["USER"]  # the account the authorized_keys file is for
        r = await c.request("GET", "/hello")
        assert (r.status, r.ok, r.json()) == (200, True, {"msg": "Hello World!"})
        assert r.headers["content-type"] == "application/json"
        r = await c.request("GET", "/nowhere")
        assert r.status == 404 and not r.ok
        with pytest.raises(rrssh.StatusError):
            r.raise_for_status()
        # 64 calls in flight on one connection.
        answers = await asyncio.gather(*(c.post("/echo", {"n": i}) for i in range(64)))
        assert answers == [{"n": i} for i in range(64)]


async def test_params_and_paths_are_encoded(server):
    async with await server.connect() as c:
        with pytest.raises(ValueError, match="must start with '/'"):
            await c.get("hello")
        assert await c.get("/hello", params={"q": "a b&c", "many": [1, 2]}) == {"msg": "Hello World!"}


async def test_a_stream_of_100000_items(server):
    async with await server.connect() as c:
        n = 0
        async for item in c.stream("/count/100000"):
            assert item == {"i": n}
            n += 1
        assert n == 100_000


async def test_leaving_a_stream_early_cancels_it(server):
    async with await server.connect() as c:
        seen = []
        async for item in c.stream("/count/1000000"):
            seen.append(item["i"])
            if len(seen) == 10:
                break
        assert seen == list(range(10))
        # The connection is fine afterwards.
        assert await c.get("/hello") == {"msg": "Hello World!"}


async def test_status_error_carries_the_error_json(server):
    async with await server.connect() as c:
        with pytest.raises(rrssh.StatusError) as e:
            await c.get("/fail/418")
        assert (e.value.status, e.value.message, e.value.detail) == (418, "failed on purpose", {"asked": 418})
        assert isinstance(e.value, rrssh.Error)
        with pytest.raises(rrssh.StatusError) as e:
            async for _ in c.stream("/hello"):
                pass
        assert e.value.status in (404, 405)


async def test_timeout_is_a_deadline_on_the_wire(server):
    async with await server.connect() as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(rrssh.Timeout) as e:
            await c.get("/slow/5000", timeout=0.2)
        assert isinstance(e.value, TimeoutError)
        assert loop.time() - t0 < 2
        assert await c.get("/slow/10", timeout=5) == {"slept_ms": 10}
        with pytest.raises(ValueError):
            await c.get("/hello", timeout=-1)


async def test_cancelling_the_task_cancels_the_call(server):
    async with await server.connect() as c:
        task = asyncio.ensure_future(c.get("/slow/10000"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Many cancelled calls leave the connection working.
        tasks = [asyncio.ensure_future(c.get("/slow/10000")) for _ in range(100)]
        await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert await c.get("/hello", timeout=5) == {"msg": "Hello World!"}


async def test_unavailable(server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(rrssh.Unavailable) as e:
        await server.connect(url=f"ssh://u@127.0.0.1:{free}")
    assert isinstance(e.value, ConnectionError)
    c = await server.connect()
    await c.close()
    with pytest.raises(rrssh.Unavailable):
        await c.get("/hello")


async def test_host_key_errors(server):
    other = (server.dir / "stranger.pub").read_text().strip()
    with pytest.raises(rrssh.HostKeyError):
        await server.connect(host_key=other)
    empty = server.dir / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(rrssh.HostKeyError, match="not known"):
        await server.connect(host_key=None, known_hosts=str(empty))
    # accept_new records the key, then it is known.
    c = await server.connect(host_key=None, known_hosts=str(empty), accept_new=True)
    await c.close()
    assert "ssh-ed25519" in empty.read_text()
    c = await server.connect(host_key=None, known_hosts=str(empty))
    await c.close()


async def test_auth_error(server):
    with pytest.raises(rrssh.AuthError, match="refused"):
        await server.connect(identity=str(server.stranger))
    with pytest.raises(rrssh.AuthError, match="cannot read"):
        await server.connect(identity=str(server.dir / "no-such-key"))


async def test_bad_targets():
    for bad in ["http://x", "hub://host", "ssh://host/path", "ssh://host:notaport", "ssh://"]:
        with pytest.raises(ValueError):
            await rrssh.connect(bad, host_key="ssh-ed25519 AAAA")


async def read_until(term, needle: bytes) -> bytes:
    out = b""
    while needle not in out:
        chunk = await term.read(timeout=5)
        assert chunk, f"no {needle!r} in time, got {out!r}"
        out += chunk
    return out


async def test_terminal_session(server):
    async with await server.connect() as c:
        term = await c.terminal(100, 30)
        await term.write(b"stty size; echo ready-$((6*7))\n")
        assert b"30 100" in await read_until(term, b"ready-42")
        await term.resize(120, 40)
        await term.write(b"stty size\n")
        await read_until(term, b"40 120")
        await term.write(b"exit 3\n")
        while (chunk := await term.read(timeout=5)) is not None:
            assert chunk != b"", "the session did not end"
        assert term.exit_status == 3


async def test_a_local_tunnel(server):
    target = await echo_server()
    port = target.sockets[0].getsockname()[1]
    async with await server.connect() as c:
        fwd = await c.forward_local("127.0.0.1", port)
        host, local = fwd.address
        reader, writer = await asyncio.open_connection(host, local)
        payload = os.urandom(1 << 20)
        writer.write(payload)
        await writer.drain()
        got = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
        assert got == payload and fwd.opened == 1
        writer.close()
        fwd.close()
        # A target the server does not permit: the local connection is closed at once.
        fwd = await c.forward_local("10.255.255.1", 9)
        reader, writer = await asyncio.open_connection(*fwd.address)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        fwd.close()
    target.close()


async def test_over_a_spawned_ssh(server):
    if shutil.which("ssh") is None:
        skip_for_want_of("OpenSSH's ssh (apt-get install openssh-client)", "RRSSH_REQUIRE_OPENSSH")
    c = await rrssh.over_ssh(
        f"{os.environ['USER']}@127.0.0.1:{server.port}",
        "-i", str(server.key),
        "-o", f"UserKnownHostsFile={server.known_hosts}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "IdentitiesOnly=yes",
        "-F", "/dev/null",
    )
    async with c:
        assert await c.get("/hello") == {"msg": "Hello World!"}
        assert len([1 async for _ in c.stream("/count/1000")]) == 1000


async def test_through_an_http_proxy(server, tmp_path):
    tinyproxy = shutil.which("tinyproxy")
    if tinyproxy is None:
        skip_for_want_of("tinyproxy (apt-get install tinyproxy)", "RRSSH_REQUIRE_PROXIES")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(f"Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nBasicAuth ada secret\nLogLevel Critical\n")
    proxy = subprocess.Popen([tinyproxy, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(250):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        async with await server.connect(proxy=f"http://ada:secret@127.0.0.1:{port}") as c:
            assert await c.get("/hello") == {"msg": "Hello World!"}
        with pytest.raises(rrssh.Unavailable, match="refused the tunnel"):
            await server.connect(proxy=f"http://ada:wrong@127.0.0.1:{port}")
        with pytest.raises(ValueError, match="bad proxy URL"):
            await server.connect(proxy="proxy:3128")
    finally:
        proxy.kill()
        proxy.wait()
