"""Serving Python handlers: as an SSH server (forward) and through a Rust hub (reverse), called
by Python, by rrssh's Rust client and by the `rrssh` CLI."""

import asyncio
import contextlib
import json
import os
import time

import pytest

import rrssh
from conftest import RRSSH, echo_server

USER = os.environ["USER"]


def make_app(seen: dict) -> rrssh.App:
    app = rrssh.App()

    @app.get("/items/{id}")
    async def item(id: str, params: dict, peer: rrssh.Peer):
        return {"id": id, "params": params, "user": peer.user, "fingerprint": peer.fingerprint}

    @app.post("/items")
    async def create(json: dict):
        return rrssh.Response(201, {"created": json})

    @app.put("/items/{id}")
    def replace(id: str, json: dict):  # a plain function is a handler too
        return {"replaced": id, "with": json}

    @app.delete("/items/{id}")
    async def remove(id: str):
        if id == "0":
            raise rrssh.HTTPError(404, "no item 0", {"id": 0})
        return None

    @app.get("/hello")
    async def hello():
        return {"msg": "Hello from Python"}

    @app.get("/boom")
    async def boom():
        raise RuntimeError("kaboom")

    @app.get("/slow")
    async def slow():
        seen["slow_started"] = seen.get("slow_started", 0) + 1
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen["slow_cancelled"] = seen.get("slow_cancelled", 0) + 1
            raise
        return {"late": True}

    @app.stream("/ticks/{n}")
    async def ticks(n: str):
        for i in range(int(n)):
            yield {"tick": i}

    @app.stream("/paced")
    async def paced():
        # Ten items 200 ms apart, each stamped when it is yielded.
        stamps = seen.setdefault("paced", [])
        for i in range(10):
            if i:
                await asyncio.sleep(0.2)
            stamps.append(time.monotonic())
            yield {"item": i}

    @app.stream("/broken")
    async def broken():
        yield {"tick": 0}
        raise rrssh.HTTPError(409, "the stream broke")

    return app


@contextlib.asynccontextmanager
async def serving(app: rrssh.App, server, tmp_path):
    """Serves `app` on a port of its own with the Rust server's client key authorized, and
    yields a client connected to it; the server is closed after."""
    (tmp_path / "authorized_keys").write_text((server.dir / "client.pub").read_text())
    srv = await app.serve("127.0.0.1:0", host_key=str(tmp_path / "host"), authorized_keys=str(tmp_path / "authorized_keys"))
    host_key = (tmp_path / "host.pub").read_text().strip()
    try:
        async with await rrssh.connect(f"ssh://{USER}@127.0.0.1:{srv.port}", identity=str(server.key), host_key=host_key) as c:
            yield c
    finally:
        await srv.close(grace=0.5)


@pytest.fixture
async def python_server(server, tmp_path):
    """A Python app served as an SSH server, with the Rust server's client key authorized."""
    seen: dict = {}
    (tmp_path / "authorized_keys").write_text((server.dir / "client.pub").read_text())
    srv = await make_app(seen).serve(
        "127.0.0.1:0", host_key=str(tmp_path / "host"), authorized_keys=str(tmp_path / "authorized_keys")
    )
    host_key = (tmp_path / "host.pub").read_text().strip()
    kind, blob = host_key.split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{srv.port} {kind} {blob}\n")
    yield srv, host_key, known, seen, tmp_path
    await srv.close(grace=0.5)


async def test_python_handlers_called_from_python(server, python_server):
    srv, host_key, _, seen, _ = python_server
    c = await rrssh.connect(f"ssh://{USER}@127.0.0.1:{srv.port}", identity=str(server.key), host_key=host_key)
    async with c:
        got = await c.get("/items/7", params={"full": "yes"})
        assert got["id"] == "7" and got["params"] == {"full": "yes"} and got["user"] == USER
        assert got["fingerprint"].startswith("SHA256:")
        r = await c.request("POST", "/items", json={"name": "x"})
        assert (r.status, r.json()) == (201, {"created": {"name": "x"}}), r.text()
        assert await c.put("/items/3", {"q": 1}) == {"replaced": "3", "with": {"q": 1}}
        r = await c.request("DELETE", "/items/3")
        assert r.status == 204
        with pytest.raises(rrssh.StatusError) as e:
            await c.delete("/items/0")
        assert (e.value.status, e.value.message, e.value.detail) == (404, "no item 0", {"id": 0})
        with pytest.raises(rrssh.StatusError) as e:
            await c.get("/boom")
        assert e.value.status == 500 and "kaboom" in e.value.message
        # Bad input is refused with a clear error, and the handler never runs.
        r = await c.request("POST", "/items", body=b"{not json", headers={"content-type": "application/json"})
        assert r.status == 400 and "not valid JSON" in r.text()
        r = await c.request("POST", "/items", body=b"{}", headers={"content-type": "text/plain"})
        assert r.status == 415
        assert (await c.request("GET", "/nowhere")).status == 404
        # 64 in flight.
        got = await asyncio.gather(*(c.get(f"/items/{i}") for i in range(64)))
        assert [g["id"] for g in got] == [str(i) for i in range(64)]


async def test_python_stream_of_100000_items_and_a_broken_one(server, python_server):
    srv, host_key, _, _, _ = python_server
    async with await rrssh.connect(f"ssh://{USER}@127.0.0.1:{srv.port}", identity=str(server.key), host_key=host_key) as c:
        n = 0
        async for item in c.stream("/ticks/100000"):
            assert item == {"tick": n}
            n += 1
        assert n == 100_000
        got = []
        with pytest.raises(rrssh.StatusError) as e:
            async for item in c.stream("/broken"):
                got.append(item)
        assert got == [{"tick": 0}]
        assert (e.value.status, e.value.message) == (409, "the stream broke")


async def test_cancelling_a_call_cancels_the_python_handler(server, python_server):
    srv, host_key, _, seen, _ = python_server
    async with await rrssh.connect(f"ssh://{USER}@127.0.0.1:{srv.port}", identity=str(server.key), host_key=host_key) as c:
        task = asyncio.ensure_future(c.get("/slow"))
        for _ in range(100):
            if seen.get("slow_started"):
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if seen.get("slow_cancelled"):
                break
            await asyncio.sleep(0.02)
        assert seen.get("slow_cancelled") == 1, "the handler's task was not cancelled"
        # A deadline cancels it too.
        with pytest.raises(rrssh.Timeout):
            await c.get("/slow", timeout=0.2)
        for _ in range(100):
            if seen.get("slow_cancelled") == 2:
                break
            await asyncio.sleep(0.02)
        assert seen.get("slow_cancelled") == 2


async def test_python_handlers_called_by_rust_and_by_the_cli(server, python_server):
    srv, _, known, _, tmp = python_server
    out = await asyncio.to_thread(server.rust_call, "/items/42", None, srv.port, tmp / "host.pub")
    assert json.loads(out)["id"] == "42"
    r = await asyncio.to_thread(
        server.cli, f"ssh://{USER}@127.0.0.1:{srv.port}", "GET", "/items/9", "colour==blue", known_hosts=known
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["id"] == "9" and got["params"] == {"colour": "blue"}
    r = await asyncio.to_thread(
        server.cli, f"ssh://{USER}@127.0.0.1:{srv.port}", "DELETE", "/items/0", known_hosts=known
    )
    assert r.returncode != 0 and "no item 0" in r.stderr


async def test_reverse_service_through_a_rust_hub(server):
    seen: dict = {}
    app = make_app(seen)
    rev = await app.serve_reverse(server.url, "pysvc", identity=str(server.key), host_key=server.host_key)
    async with rev:
        await rev.connected(timeout=10)
        assert rev.is_connected
        # Python → hub → Python.
        async with await rrssh.connect(
            f"hub://{USER}@127.0.0.1:{server.port}/pysvc", identity=str(server.key), host_key=server.host_key
        ) as c:
            assert await c.get("/hello") == {"msg": "Hello from Python"}
            assert len([t async for t in c.stream("/ticks/1000")]) == 1000
        # Rust client → hub → Python, and the CLI.
        out = await asyncio.to_thread(server.rust_call, "/hello", "pysvc")
        assert json.loads(out) == {"msg": "Hello from Python"}
        r = await asyncio.to_thread(server.cli, f"hub://{USER}@127.0.0.1:{server.port}/pysvc", "GET", "/items/5")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["id"] == "5"


async def test_a_python_hub_sees_services_come_and_go_and_calls_them(server, tmp_path):
    (tmp_path / "authorized_keys").write_text('rrssh-scopes="call:*",rrssh-services="pysvc,billing" ' + (server.dir / "client.pub").read_text())
    hub_app = rrssh.App()
    hub = await hub_app.serve(
        "127.0.0.1:0", host_key=str(tmp_path / "host"), authorized_keys=str(tmp_path / "authorized_keys"), relay=True
    )
    host_key = (tmp_path / "host.pub").read_text().strip()
    events = hub_app.events()
    everyone = hub_app.events(callers=True)
    svc = make_app({})
    rev = await svc.serve_reverse(f"ssh://{USER}@127.0.0.1:{hub.port}", "billing", identity=str(server.key), host_key=host_key)
    await rev.connected(timeout=10)
    ev = await asyncio.wait_for(events.__anext__(), 10)
    assert (ev["event"], ev["name"], ev["user"]) == ("connected", "billing", USER)
    assert hub.peers() == ["billing"]
    # The hub's own process calls its peer without dialing itself.
    billing = hub.peer("billing")
    assert (await billing.get("/items/2"))["id"] == "2"
    assert [t async for t in billing.stream("/ticks/3")] == [{"tick": 0}, {"tick": 1}, {"tick": 2}]
    with pytest.raises(rrssh.Unavailable, match="no peer named"):
        await hub.peer("nobody").get("/hello")
    with pytest.raises(rrssh.Unavailable, match="calls only"):
        await billing.terminal()
    async with await rrssh.connect(
        f"hub://{USER}@127.0.0.1:{hub.port}/billing", identity=str(server.key), host_key=host_key
    ) as c:
        assert (await c.get("/items/1"))["id"] == "1"
    await rev.close()
    # The caller came and went without a name: only `callers=True` tells of it.
    ev = await asyncio.wait_for(events.__anext__(), 10)
    assert (ev["event"], ev["name"]) == ("disconnected", "billing")
    seen = []
    while len(seen) < 4:
        seen.append(await asyncio.wait_for(everyone.__anext__(), 10))
    assert sorted((e["event"], e["name"] or "") for e in seen) == [
        ("connected", ""), ("connected", "billing"), ("disconnected", ""), ("disconnected", "billing")
    ]
    await events.aclose()
    await everyone.aclose()
    await hub.close(grace=0.5)


async def test_stream_handlers_must_be_async_generators():
    app = rrssh.App()
    with pytest.raises(TypeError, match="async generator"):

        @app.stream("/x")
        async def not_a_generator():
            return 1


async def test_a_python_stream_is_seen_item_by_item_as_it_is_produced(server, python_server):
    """Each item reaches the caller within 50 ms of its yield, though the generator yields
    less than a batch: a Python caller, then the CLI."""
    srv, host_key, known, seen, _ = python_server
    c = await rrssh.connect(f"ssh://{USER}@127.0.0.1:{srv.port}", identity=str(server.key), host_key=host_key)
    async with c:
        seen.pop("paced", None)
        arrived = []
        async for item in c.stream("/paced"):
            arrived.append((item["item"], time.monotonic()))
    lags = [at - seen["paced"][i] for i, at in arrived]
    print("Python caller, lag per item (ms):", [round(lag * 1000, 1) for lag in lags])
    assert [i for i, _ in arrived] == list(range(10))
    assert max(lags) < 0.05, lags

    # The CLI prints each item as it arrives.
    seen.pop("paced", None)
    proc = await asyncio.create_subprocess_exec(
        str(RRSSH),
        "call",
        "--color",
        "never",
        "-i",
        str(server.key),
        "--known-hosts",
        str(known),
        f"ssh://{USER}@127.0.0.1:{srv.port}",
        "STREAM",
        "/paced",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines = []
    while line := await asyncio.wait_for(proc.stdout.readline(), 10):
        lines.append((json.loads(line), time.monotonic()))
    assert await proc.wait() == 0
    lags = [at - seen["paced"][item["item"]] for item, at in lines]
    print("CLI, lag per item (ms):", [round(lag * 1000, 1) for lag in lags])
    assert [item["item"] for item, _ in lines] == list(range(10))
    assert max(lags) < 0.05, lags


async def test_a_python_stream_through_the_gateway_arrives_item_by_item(server, tmp_path):
    """A Python service behind a hub (`rrssh hub --gateway`), its stream read with curl: each
    item within 50 ms of its yield."""
    import re
    import shutil

    from conftest import skip_for_want_of

    curl = shutil.which("curl")
    if curl is None:
        skip_for_want_of("curl", "RRSSH_REQUIRE_CURL")
    (tmp_path / "authorized_keys").write_text((server.dir / "client.pub").read_text())
    (tmp_path / "tokens").write_text("ops s3cret-token-of-ops-0001 call:*\n")
    hub = await asyncio.create_subprocess_exec(
        str(RRSSH),
        "hub",
        "--listen",
        "127.0.0.1:0",
        "--create-host-key",
        "--host-key",
        str(tmp_path / "hub_host"),
        "--authorized-keys",
        str(tmp_path / "authorized_keys"),
        "--open-registration",
        "--gateway",
        "127.0.0.1:0",
        "--gateway-tokens",
        str(tmp_path / "tokens"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert hub.stdout is not None
        addrs = {}
        while len(addrs) < 2:
            line = (await asyncio.wait_for(hub.stdout.readline(), 30)).decode()
            assert line, "the hub stopped before it listened"
            m = re.search(r"(hub|gateway) listening on (?:http://)?([0-9.]+:[0-9]+)", line)
            if m:
                addrs[m.group(1)] = m.group(2)
        seen: dict = {}
        host_key = (tmp_path / "hub_host.pub").read_text().strip()
        rev = await make_app(seen).serve_reverse(
            f"ssh://{USER}@{addrs['hub']}", "paced", identity=str(server.key), host_key=host_key
        )
        try:
            # The hub registers the name a moment after the service's connection is up.
            for _ in range(100):
                peers = await asyncio.create_subprocess_exec(
                    curl, "-s", "-H", "authorization: Bearer s3cret-token-of-ops-0001",
                    f"http://{addrs['gateway']}/peers", stdout=asyncio.subprocess.PIPE,
                )
                listed, _ = await peers.communicate()
                if b'"paced"' in listed:
                    break
                await asyncio.sleep(0.05)
            proc = await asyncio.create_subprocess_exec(
                curl,
                "-sN",
                "-X",
                "STREAM",
                "-H",
                "authorization: Bearer s3cret-token-of-ops-0001",
                f"http://{addrs['gateway']}/peers/paced/paced",
                stdout=asyncio.subprocess.PIPE,
            )
            assert proc.stdout is not None
            lines = []
            while line := await asyncio.wait_for(proc.stdout.readline(), 10):
                lines.append((json.loads(line), time.monotonic()))
            assert await proc.wait() == 0
        finally:
            await rev.close()
    finally:
        hub.terminate()
        await hub.wait()
    lags = [at - seen["paced"][item["item"]] for item, at in lines]
    print("gateway (curl), lag per item (ms):", [round(lag * 1000, 1) for lag in lags])
    assert [item["item"] for item, _ in lines] == list(range(10))
    assert max(lags) < 0.05, lags


async def test_typed_handlers_convert_and_refuse_with_422_naming_the_field(server, tmp_path):
    import dataclasses
    from typing import List, Optional

    @dataclasses.dataclass
    class Item:
        name: str
        price: float
        tags: List[str] = dataclasses.field(default_factory=list)

    app = rrssh.App()

    @app.get("/items/{id}")
    async def item(id: int, full: bool = False, limit: Optional[int] = None, tag: List[str] = []):  # noqa: B006
        return {"id": id, "full": full, "limit": limit, "tag": tag, "types": [type(id).__name__, type(full).__name__]}

    @app.post("/items")
    async def create(item: Item):
        return {"name": item.name, "price": item.price, "tags": item.tags, "type": type(item).__name__}

    @app.get("/need")
    async def need(q: float):
        return q

    async with serving(app, server, tmp_path) as c:
        got = await c.get("/items/7", params={"full": "true", "limit": "3"})
        assert got == {"id": 7, "full": True, "limit": 3, "tag": [], "types": ["int", "bool"]}
        got = await c.get("/items/7?tag=a&tag=b")
        assert got["tag"] == ["a", "b"] and got["limit"] is None
        for path, field, where in [
            ("/items/seven", "id", "path"),
            ("/items/7?full=maybe", "full", "query"),
            ("/items/7?limit=1.5", "limit", "query"),
            ("/need", "q", "query"),
            ("/need?q=nan", "q", "query"),
        ]:
            r = await c.request("GET", path)
            err = r.json()["error"]
            assert r.status == 422, (path, r.text())
            assert f"`{field}`" in err["message"] and err["detail"] == {"field": field, "in": where}, err
        r = await c.request("POST", "/items", json={"name": "pen", "price": 2})
        assert r.json() == {"name": "pen", "price": 2, "tags": [], "type": "Item"}
        for body, field in [
            ({"price": 2}, "name"),
            ({"name": "pen", "price": "two"}, "price"),
            ({"name": "pen", "price": 2, "colour": "red"}, "colour"),
            ({"name": 5, "price": 2}, "name"),
        ]:
            r = await c.request("POST", "/items", json=body)
            assert r.status == 422 and r.json()["error"]["detail"]["field"] == field, (body, r.text())


async def test_expose_errors_puts_the_traceback_in_the_detail(server, tmp_path):
    app = rrssh.App(expose_errors=True)

    @app.get("/boom")
    async def boom():
        return 1 / 0

    async with serving(app, server, tmp_path) as c:
        with pytest.raises(rrssh.StatusError) as e:
            await c.get("/boom")
        assert e.value.status == 500 and "ZeroDivisionError" in e.value.message
        tb = e.value.detail["traceback"]
        assert tb[0].startswith("Traceback") and any("1 / 0" in line for line in tb), tb


async def test_a_pydantic_body_is_validated_by_pydantic(server, tmp_path):
    from conftest import skip_for_want_of

    try:
        import pydantic
    except ImportError:
        skip_for_want_of("pydantic", "RRSSH_REQUIRE_PYTHON_TOOLS")

    class Order(pydantic.BaseModel):
        sku: str
        quantity: int = pydantic.Field(gt=0)

    app = rrssh.App()

    @app.post("/orders")
    async def order(o: Order):
        return {"sku": o.sku, "quantity": o.quantity, "type": type(o).__name__}

    async with serving(app, server, tmp_path) as c:
        r = await c.request("POST", "/orders", json={"sku": "pen", "quantity": 2})
        assert r.json() == {"sku": "pen", "quantity": 2, "type": "Order"}
        r = await c.request("POST", "/orders", json={"sku": "pen", "quantity": 0})
        assert r.status == 422 and r.json()["error"]["detail"]["field"] == "quantity", r.text()
        r = await c.request("POST", "/orders", json={"quantity": 1})
        assert r.status == 422 and r.json()["error"]["detail"]["field"] == "sku", r.text()


async def test_the_openapi_document_of_a_python_app_comes_from_its_hints(server, tmp_path):
    import dataclasses
    from typing import Optional

    from conftest import skip_for_want_of

    try:
        from openapi_spec_validator import validate
    except ImportError:
        skip_for_want_of("openapi-spec-validator", "RRSSH_REQUIRE_PYTHON_TOOLS")

    @dataclasses.dataclass
    class Item:
        name: str
        price: float

    app = rrssh.App()

    @app.get("/items/{id}")
    async def item(id: int, full: bool = False, limit: Optional[int] = None):
        """One item."""
        return {"id": id}

    @app.post("/items")
    async def create(item: Item):
        return {}

    @app.stream("/ticks/{n}")
    async def ticks(n: int):
        yield n

    doc = app.openapi()
    validate(doc)
    op = doc["paths"]["/items/{id}"]["get"]
    assert op["summary"] == "One item."
    assert {p["name"]: (p["in"], p["schema"]) for p in op["parameters"]} == {
        "id": ("path", {"type": "integer"}),
        "full": ("query", {"type": "boolean"}),
        "limit": ("query", {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    }
    body = doc["paths"]["/items"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Item"}
    assert doc["components"]["schemas"]["Item"]["required"] == ["name", "price"]
    assert doc["paths"]["/ticks/{n}"]["get"]["x-rrssh-method"] == "STREAM"

    # Served by the app, as a Rust router serves its own.
    async with serving(app, server, tmp_path) as c:
        served = await c.get("/.well-known/rrssh/openapi.json")
        validate(served)
        assert served["paths"].keys() == doc["paths"].keys()


async def test_app_serve_permits_tunnels_and_terminals_to_granted_keys(server, tmp_path):
    """`App.serve(permit_open=…, terminal=…)`: a tunnel to a permitted target, none to
    another, and a terminal for a key granted one (the scope `terminal`), none for another."""
    target = await echo_server()
    port = target.sockets[0].getsockname()[1]
    granted = server.dir / "client.pub"
    plain = server.dir / "stranger.pub"
    (tmp_path / "authorized_keys").write_text(
        'rrssh-scopes="terminal" ' + granted.read_text() + plain.read_text()
    )
    app = rrssh.App()

    @app.get("/hello")
    async def hello():
        return "hi"

    srv = await app.serve(
        "127.0.0.1:0",
        host_key=str(tmp_path / "host"),
        authorized_keys=str(tmp_path / "authorized_keys"),
        permit_open=f"127.0.0.1:{port}",
        terminal="/bin/sh",
    )
    host_key = (tmp_path / "host.pub").read_text().strip()
    url = f"ssh://{USER}@127.0.0.1:{srv.port}"
    try:
        async with await rrssh.connect(url, identity=str(server.key), host_key=host_key) as c:
            fwd = await c.forward_local("127.0.0.1", port)
            reader, writer = await asyncio.open_connection(*fwd.address)
            writer.write(b"through the tunnel")
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(18), 10) == b"through the tunnel"
            writer.close()
            fwd.close()
            # Not permitted: the local connection is closed at once.
            fwd = await c.forward_local("127.0.0.1", port + 1 if port < 65535 else port - 1)
            reader, writer = await asyncio.open_connection(*fwd.address)
            assert await asyncio.wait_for(reader.read(), 10) == b""
            fwd.close()
            term = await c.terminal(80, 24)
            await term.write(b"echo term-$((6*7)); exit 4\n")
            out = b""
            while (chunk := await term.read(timeout=5)) is not None:
                out += chunk
            assert b"term-42" in out and term.exit_status == 4
        async with await rrssh.connect(url, identity=str(server.stranger), host_key=host_key) as c:
            assert await c.get("/hello") == "hi"
            with pytest.raises(rrssh.Error) as e:
                term = await c.terminal(80, 24)
                while (chunk := await term.read(timeout=5)) is not None:
                    pass
            assert "no terminal for this key" in str(e.value), e.value
    finally:
        await srv.close(grace=0.5)
        target.close()
