"""The registry benchmark's open-loop client charges a stall to every request scheduled during it.

No timing target here (see bench/): only lower bounds that hold on any machine, because a sleeping
server cannot answer before its sleep ends.
"""

import asyncio

from bench import bench_registry

BODY = b'{"items":[{}]}'


async def test_open_loop_counts_requests_queued_behind_a_stall(monkeypatch) -> None:
    """100 requests at 100/s; the 11th answer after the warm-up takes 0.5 s. A closed-loop client would
    record one slow request; the open loop also records the ~25 requests due in the stall's first half
    as late by >= 0.25 s each (latency runs from the scheduled send time)."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                served += 1
                if served == 1 + 11:  # after the one warm-up request
                    await asyncio.sleep(0.5)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    monkeypatch.setattr(bench_registry, "OPEN_LOOP_CONNECTIONS", 1)  # one connection: the stall blocks it
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await bench_registry.run_open_loop(f"http://127.0.0.1:{port}", {}, rate=100, duration=1.0)
    finally:
        server.close()
        await server.wait_closed()
    assert result["n"] == 100 and result["errors"] == 0 and result["unanswered"] == 0
    assert result["max_ms"] >= 500
    assert result["p90_ms"] >= 250  # >= 25 of the 100 waited at least that long
