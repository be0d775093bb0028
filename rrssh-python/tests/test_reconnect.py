"""A reconnecting client (`connect(…, reconnect=True)`) across a server killed and restarted on
the same port: its calls, its subscription, its local tunnel and its connection events come
back, after an outage of 0 s and of 5 s."""

import asyncio
import os

import pytest

import rrssh
from conftest import RustServer, echo_server, free_port


async def _echo_once(address) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    payload = os.urandom(4096)
    writer.write(payload)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    writer.close()
    assert got == payload
    return got


@pytest.mark.parametrize("outage", [0.0, 5.0])
async def test_a_client_comes_back_after_the_server_restarts(tmp_path, outage):
    server = RustServer(tmp_path, port=free_port())

    target = await echo_server()
    try:
        client = await server.connect(reconnect=True, keepalive=(0.5, 2))
        events = []
        items = []

        async def watch():
            async for ev in client.connection_events():
                events.append(ev)

        async def subscribe():
            async for item in client.subscribe("/ticks/50"):
                items.append(item)

        watcher = asyncio.create_task(watch())
        subscriber = asyncio.create_task(subscribe())
        fwd = await client.forward_local("127.0.0.1", target.sockets[0].getsockname()[1])
        address = fwd.address
        await _echo_once(address)
        for _ in range(100):
            if len(items) >= 3:
                break
            await asyncio.sleep(0.05)
        assert len(items) >= 3, "the subscription yields before the outage"

        server.kill()
        await asyncio.sleep(outage)
        before = len(items)
        server.start()

        await client.connected(timeout=20)
        assert await client.get("/hello", timeout=5) == {"msg": "Hello World!"}
        # The subscription was opened again: new items, counted from 0 by the new server.
        for _ in range(200):
            if len(items) > before + 2:
                break
            await asyncio.sleep(0.05)
        assert len(items) > before + 2, f"no items after reconnecting ({before} before)"
        assert items[before]["i"] < 5, "items after the restart come from a new stream"
        # The tunnel kept listening on the same address and carries again.
        assert fwd.address == address
        await _echo_once(address)
        kinds = [e["event"] for e in events]
        assert "disconnected" in kinds, kinds
        assert "connected" in kinds[kinds.index("disconnected"):], kinds
        assert client.is_connected and not client.is_closed

        subscriber.cancel()
        fwd.close()
        await client.close()
        assert client.is_closed
        await asyncio.wait_for(watcher, 5)  # the events end with the client
    finally:
        target.close()
        server.stop()


async def test_calls_while_down_fail_or_wait_by_their_deadline(tmp_path):
    server = RustServer(tmp_path, port=free_port())
    try:
        client = await server.connect(reconnect=True)
        server.kill()
        for _ in range(100):
            if not client.is_connected:
                break
            await asyncio.sleep(0.05)
        assert not client.is_connected and not client.is_closed
        # No deadline: fails at once. A deadline: waits for the connection within it.
        with pytest.raises(rrssh.Unavailable):
            await client.get("/hello")
        with pytest.raises(rrssh.Timeout):
            await client.get("/hello", timeout=0.3)
        server.start()
        assert await client.get("/hello", timeout=20) == {"msg": "Hello World!"}
        await client.close()
    finally:
        server.stop()


async def test_a_refused_login_fails_connect_instead_of_retrying(server):
    with pytest.raises(rrssh.AuthError):
        await server.connect(identity=str(server.stranger), reconnect=True)


async def test_a_subscription_waits_for_a_service_that_is_away(server):
    client = await server.connect(url=f"hub://{os.environ['USER']}@127.0.0.1:{server.port}/billing", reconnect=True)
    items = []

    async def subscribe():
        async for item in client.subscribe("/ticks/3"):
            items.append(item)

    task = asyncio.create_task(subscribe())
    await asyncio.sleep(1.0)
    assert not task.done(), "503 (no such peer yet) is waited out, not raised"
    app = rrssh.App()

    @app.stream("/ticks/{n}")
    async def ticks(n: int):
        for i in range(n):
            yield {"tick": i}

    rev = await app.serve_reverse(server.url, "billing", identity=str(server.key), host_key=server.host_key)
    try:
        await rev.connected(timeout=10)
        await asyncio.wait_for(task, 10)
        assert items == [{"tick": 0}, {"tick": 1}, {"tick": 2}]
        # Another error status is raised at once.
        with pytest.raises(rrssh.StatusError, match="404"):
            async for _ in client.subscribe("/no/such/route"):
                pass
    finally:
        await rev.close()
        await client.close()
