"""shared.events.kafka.bounded: a timeout or a client's own cancellation is an ordinary failure; only
the caller's cancellation is a CancelledError (a consumer loop that re-raises CancelledError would
otherwise stop for good while the service looks alive)."""

import asyncio

import pytest

from shared.events.kafka import ClientCancelled, bounded


async def cancelled_inside():
    await asyncio.sleep(0)
    raise asyncio.CancelledError  # what aiokafka's stop() does when its fetch tasks were cancelled


async def test_a_cancellation_from_inside_the_client_is_an_ordinary_exception():
    with pytest.raises(ClientCancelled):
        await bounded(cancelled_inside(), 1, "consumer stop")


async def test_a_slow_call_times_out_and_the_callers_cancellation_still_cancels():
    with pytest.raises(TimeoutError):
        await bounded(asyncio.sleep(10), 0.05, "poll")
    caller = asyncio.ensure_future(bounded(asyncio.sleep(10), 5, "poll"))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_the_result_passes_through():
    async def value():
        return 42
    assert await bounded(value(), 1, "call") == 42
