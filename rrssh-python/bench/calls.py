"""Calls per second from Python: rrssh's bindings against korv's own client, same machine, same
run, interleaved (korv, rrssh, korv, rrssh…), median of the repetitions.

    python rrssh-python/bench/calls.py            # needs: the bindings built, korv installed,
                                                  # the Rust binaries (see tests/conftest.py)

Workload (as in notes on the peers): `GET /hello` → `{"msg": "Hello World!"}`, one connection,
1 call in flight (sequential) and 64 in flight. Each server runs in a process of its own:
- korv: `KorvServer` with a Python handler, called with korv's own client (`KorvClient.get`
  with a callback; without one it polls every 100 ms), and, as an upper bound for korv, with
  its protocol session driven from the caller's loop.
- rrssh, Python server: an `rrssh.App` served by `App.serve`, called with `rrssh.connect`.
- rrssh, Rust server: the `fixture_server` example's `/hello`, called with `rrssh.connect`.
"""

import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import conftest  # noqa: E402

import rrssh  # noqa: E402

SECS = float(os.environ.get("BENCH_SECS", "2"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
USER = os.environ["USER"]

KORV_SERVER = """
import asyncio, logging, sys
logging.disable(logging.CRITICAL)
from korv import KorvServer
def hello(request):
    return 200, {"msg": "Hello World!"}
k = KorvServer(port=int(sys.argv[1]), host_keys=[sys.argv[2]], authorized_client_keys=sys.argv[3])
k.add_callback("GET", "/hello", hello)
print("ready", flush=True)
k.start()
"""

RRSSH_SERVER = """
import asyncio, sys
import rrssh
app = rrssh.App()
@app.get("/hello")
async def hello():
    return {"msg": "Hello World!"}
async def main():
    srv = await app.serve("127.0.0.1:0", host_key=sys.argv[1], authorized_keys=sys.argv[2])
    print(srv.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""


async def load(call, conc: int, secs: float) -> float:
    """Calls per second with `conc` workers for `secs`."""
    end = time.perf_counter() + secs
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < end:
            await call()
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return done / (time.perf_counter() - t0)


def unique_korv_ids() -> None:
    """korv names requests by time.time(): at 64 in flight two share a name and one answer is
    lost. A counter instead, so that runs complete (it costs korv nothing)."""
    import korv.client as kc

    counter = itertools.count(1)
    kc.time = type("T", (), {"time": staticmethod(lambda: next(counter))})


async def korv_own_client(port: int, key: Path):
    """korv's own client, `KorvClient`: it runs its loop in a thread of its own; answers come
    back through a callback, handed to this loop."""
    from korv import KorvClient

    k = await asyncio.to_thread(KorvClient, "127.0.0.1", port, client_keys=[str(key)], known_hosts=None)
    loop = asyncio.get_running_loop()

    async def call() -> None:
        fut = loop.create_future()
        k.get("/hello", callback=lambda resp: loop.call_soon_threadsafe(fut.set_result, resp))
        resp = await fut
        assert resp["code"] == 200, resp

    return call, k


async def korv_session(port: int, key: Path):
    """korv's protocol driven from this loop, without its client's thread hop: an upper bound
    for korv."""
    import asyncssh
    import korv.client as kc

    conn, _ = await asyncssh.create_connection(
        kc._SSHClient, "127.0.0.1", port, client_keys=[str(key)], known_hosts=None, username=USER
    )
    _, session = await conn.create_connection(kc._SSHClientSession, "127.0.0.1", port)
    loop = asyncio.get_running_loop()

    async def call() -> None:
        fut = loop.create_future()
        await session.send_request("GET", "/hello", None, fut.set_result)
        resp = await fut
        assert resp["code"] == 200, resp

    return call, conn


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    (tmp / "rust").mkdir()
    rust = conftest.RustServer(tmp / "rust")
    key = rust.key
    auth = tmp / "authorized_keys"
    auth.write_text((tmp / "rust" / "client.pub").read_text())
    # korv wants an OpenSSH host key file: the CLI makes one.
    conftest.keygen(tmp / "korv_host")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        korv_port = s.getsockname()[1]
    korv = subprocess.Popen(
        [sys.executable, "-c", KORV_SERVER, str(korv_port), str(tmp / "korv_host"), str(auth)],
        stdout=subprocess.PIPE, text=True,
    )
    assert korv.stdout.readline().strip() == "ready"
    await asyncio.sleep(0.5)
    pyserver = subprocess.Popen(
        [sys.executable, "-c", RRSSH_SERVER, str(tmp / "py_host"), str(auth)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    py_port = int(pyserver.stdout.readline())
    py_host_key = (tmp / "py_host.pub").read_text().strip()
    try:
        unique_korv_ids()
        k_call, k_client = await korv_own_client(korv_port, key)
        ks_call, k_conn = await korv_session(korv_port, key)
        to_py = await rrssh.connect(f"ssh://{USER}@127.0.0.1:{py_port}", identity=str(key), host_key=py_host_key)
        to_rust = await rust.connect()
        systems = {
            "korv (Python server, korv client)": k_call,
            "korv (Python server, its session in-loop)": ks_call,
            "rrssh (Python server, rrssh client)": lambda: to_py.get("/hello"),
            "rrssh (Rust server, rrssh client)": lambda: to_rust.get("/hello"),
        }
        print(f"# {os.cpu_count()} cores, {SECS} s per figure, median of {REPS}", flush=True)
        results = {}
        for conc in (1, 64):
            runs = {name: [] for name in systems}
            for _ in range(REPS):
                for name, call in systems.items():
                    runs[name].append(await load(call, conc, SECS))
            for name, rates in runs.items():
                results[(name, conc)] = statistics.median(rates)
                print(f'{{"figure":"get_{"seq" if conc == 1 else "conc64"}","system":"{name}","rate":{results[(name, conc)]:.0f}}}', flush=True)
        print()
        print(f"{'figure':<44} {'calls/s':>10} {'vs korv':>8}")
        for conc in (1, 64):
            base = results[("korv (Python server, korv client)", conc)]
            for name in systems:
                r = results[(name, conc)]
                tag = "sequential" if conc == 1 else "64 in flight"
                print(f"{name + ', ' + tag:<44} {r:>10.0f} {r / base:>7.1f}x")
        k_conn.close()
        k_client._loop.call_soon_threadsafe(k_client._loop.stop)
        await to_py.close()
        await to_rust.close()
    finally:
        korv.kill()
        pyserver.stdin.close()
        pyserver.wait(timeout=10)
        rust.stop()


if __name__ == "__main__":
    asyncio.run(main())
