"""The synchronous facade: blocking calls from plain functions and threads, with timeouts that
cancel the call, and streams as iterators."""

import threading
import time

import pytest

import rrssh
import rrssh.sync


def connect(server) -> rrssh.sync.Client:
    return rrssh.sync.connect(server.url, identity=str(server.key), host_key=server.host_key)


def test_blocking_calls_streams_and_errors(server):
    with connect(server) as c:
        assert "msg" in c.get("/hello")
        assert c.post("/echo", {"a": [1, 2]}) == {"a": [1, 2]}
        r = c.request("GET", "/fail/418")
        assert r.status == 418
        with pytest.raises(rrssh.StatusError) as e:
            c.get("/fail/404")
        assert e.value.status == 404
        assert [item["i"] for item in c.stream("/count/5")] == [0, 1, 2, 3, 4]
        # Leaving a stream early is fine, and the connection goes on.
        for item in c.stream("/count/1000000"):
            if item["i"] == 3:
                break
        assert c.post("/echo", {"after": "stream"}) == {"after": "stream"}


def test_a_timeout_raises_and_cancels_the_call(server):
    with connect(server) as c:
        start = time.monotonic()
        with pytest.raises(rrssh.Timeout):
            c.get("/slow/5000", timeout=0.3)
        assert time.monotonic() - start < 2.5
        assert c.post("/echo", {"still": "here"}) == {"still": "here"}


def test_many_threads_share_one_client(server):
    with connect(server) as c:
        got: list = []

        def work(i: int) -> None:
            got.append(c.post("/echo", {"i": i})["i"])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(got) == list(range(16))


async def test_inside_a_coroutine_it_says_to_await_instead(server):
    with pytest.raises(RuntimeError, match="await"):
        connect(server)
