"""The two tiny drivers of `dynamodel.core.flows`: sync (boto3) and async (aioboto3).

They differ only in how a request is sent and how a sleep is slept; all logic lives in the flows.
The async drivers import asyncio where they use it: a sync cold start (AWS Lambda's) does not
pay for its import (about 10 ms).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dynamodel.core.errors import map_client_error, map_setup_error
from dynamodel.core.flows import (
    CONNECTION_INPUTS,
    CONNECTION_POLICY,
    Emit,
    Flow,
    Gather,
    Request,
    Sleep,
    Step,
    call,
)
from dynamodel.io.capacity import tracker
from dynamodel.io.middleware import acall, call as call_through, prepend

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection

T = TypeVar("T")


def _send_sync(connection: Connection, client: Any, request: Request) -> Any:
    track = tracker(connection, request)
    if track is None:  # the client itself, or the connection's chain (cache, DAX) in front of it
        return getattr(client, request.op)(**request.params)
    chain, client = prepend(track, client)
    return call_through(chain, client, request.op, request.params)


async def _send_async(connection: Connection, client: Any, request: Request) -> Any:
    track = tracker(connection, request)
    if track is None:
        return await getattr(client, request.op)(**request.params)
    chain, client = prepend(track, client)
    return await acall(chain, client, request.op, request.params)


def _gather_sync(step: Gather, connection: Connection) -> list[Any]:
    """Run each request of a Gather (with retries) on a bounded thread pool."""
    flows = [call(request, step.retry) for request in step.requests]
    return run_many(flows, connection, step.max_concurrency)


async def _gather_async(step: Gather, connection: Connection) -> list[Any]:
    """Run each request of a Gather (with retries) as concurrent tasks, at most N at once."""
    flows = [call(request, step.retry) for request in step.requests]
    return await arun_many(flows, connection, step.max_concurrency)


def _advance_sync(flow: Flow[Any], step: Step, connection: Connection) -> Step:
    """Perform one non-Emit step and return the flow's next step."""
    if step is CONNECTION_POLICY:
        return flow.send(connection.retry)
    if step is CONNECTION_INPUTS:
        return flow.send(connection.inputs)
    if isinstance(step, Gather):
        return flow.send(_gather_sync(step, connection))
    if isinstance(step, Sleep):
        if step.seconds > 0:
            time.sleep(step.seconds)
        return flow.send(None)
    assert isinstance(step, Request)
    client = None
    try:
        client = connection.client(control=step.control)
        response = _send_sync(connection, client, step)
    except Exception as exc:
        return _throw_mapped(flow, exc, step, client)
    return flow.send(response)


def _throw_mapped(flow: Flow[Any], exc: Exception, request: Request, client: Any) -> Step:
    """Throw the dynamodel form of a client error into the flow; raise a setup error (no
    region, credentials or endpoint) in its explaining form; re-raise any other error.

    ``client`` is the client that sent the request (None if creating it failed): a
    `TableNotFound` names its region and endpoint.
    """
    mapped = map_client_error(exc, request.op, params=request.params, client=client)
    if mapped is None:
        setup = map_setup_error(exc, client)
        if setup is None:
            raise exc
        raise setup from exc
    mapped.__cause__ = exc
    return flow.throw(mapped)


class _Finished:
    """The flow returned (a coroutine must not let StopIteration escape)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


async def _advance_async(flow: Flow[Any], step: Step, connection: Connection) -> Step | _Finished:
    """Async twin of `_advance_sync`; returns `_Finished` when the flow ends."""
    try:
        if step is CONNECTION_POLICY:
            return flow.send(connection.retry)
        if step is CONNECTION_INPUTS:
            return flow.send(connection.inputs)
        if isinstance(step, Gather):
            return flow.send(await _gather_async(step, connection))
        if isinstance(step, Sleep):
            if step.seconds > 0:
                import asyncio

                await asyncio.sleep(step.seconds)
            return flow.send(None)
        assert isinstance(step, Request)
        client = None
        try:
            client = await connection.aclient(control=step.control)
            response = await _send_async(connection, client, step)
        except Exception as exc:
            return _throw_mapped(flow, exc, step, client)
        return flow.send(response)
    except StopIteration as stop:
        return _Finished(stop.value)


def run(flow: Flow[T], connection: Connection) -> T:
    """Drive a flow to completion with the sync client; return its result."""
    try:
        step = next(flow)
        while True:
            step = (
                flow.send(None) if isinstance(step, Emit) else _advance_sync(flow, step, connection)
            )
    except StopIteration as stop:
        result: T = stop.value
        return result


async def arun(flow: Flow[T], connection: Connection) -> T:
    """Drive a flow to completion with the async client; return its result."""
    step: Step | _Finished = _start(flow)
    while not isinstance(step, _Finished):
        if isinstance(step, Emit):
            step = _send(flow, None)
        else:
            step = await _advance_async(flow, step, connection)
    result: T = step.value
    return result


def _start(flow: Flow[Any]) -> Step | _Finished:
    try:
        return next(flow)
    except StopIteration as stop:
        return _Finished(stop.value)


def _send(flow: Flow[Any], value: Any) -> Step | _Finished:
    try:
        return flow.send(value)
    except StopIteration as stop:
        return _Finished(stop.value)


def iterate(flow: Flow[Any], connection: Connection) -> Iterator[Any]:
    """Drive a flow with the sync client, yielding each emitted value as it comes."""
    try:
        step = next(flow)
        while True:
            if isinstance(step, Emit):
                value = step.value
                del step  # the consumer holds the value; keep no second reference
                yield value
                del value
                step = flow.send(None)
            else:
                step = _advance_sync(flow, step, connection)
    except StopIteration:
        return
    finally:
        flow.close()


async def aiterate(flow: Flow[Any], connection: Connection) -> AsyncIterator[Any]:
    """Drive a flow with the async client, yielding each emitted value as it comes."""
    try:
        step: Step | _Finished = _start(flow)
        while not isinstance(step, _Finished):
            if isinstance(step, Emit):
                value = step.value
                del step  # the consumer holds the value; keep no second reference
                yield value
                del value
                step = _send(flow, None)
            else:
                step = await _advance_async(flow, step, connection)
    finally:
        flow.close()


def iterate_many(
    flows: list[Flow[Any]], connection: Connection, max_concurrency: int
) -> Iterator[Any]:
    """Drive several iterating flows on a bounded thread pool; yield values as they arrive.

    An error in any flow is raised to the consumer; closing the iterator stops the workers.
    """
    import queue
    import threading
    from concurrent.futures import ThreadPoolExecutor

    results: queue.Queue[Any] = queue.Queue(maxsize=max(2, 2 * max_concurrency))
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                results.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work(flow: Flow[Any]) -> None:
        try:
            for value in iterate(flow, connection):
                if not put(("value", value)):
                    return
        except BaseException as exc:
            put(("error", exc))
            return
        put(("done", None))

    pool = ThreadPoolExecutor(max_workers=max(1, min(max_concurrency, len(flows))))
    try:
        for flow in flows:
            pool.submit(contextvars.copy_context().run, work, flow)
        remaining = len(flows)
        while remaining:
            kind, value = results.get()
            if kind == "value":
                yield value
            elif kind == "done":
                remaining -= 1
            else:
                raise value
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


async def aiterate_many(
    flows: list[Flow[Any]], connection: Connection, max_concurrency: int
) -> AsyncIterator[Any]:
    """Drive several iterating flows as concurrent tasks (at most ``max_concurrency`` at once)."""
    import asyncio

    results: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(2, 2 * max_concurrency))
    gate = asyncio.Semaphore(max(1, max_concurrency))

    async def work(flow: Flow[Any]) -> None:
        async with gate:
            try:
                async for value in aiterate(flow, connection):
                    await results.put(("value", value))
            except Exception as exc:
                await results.put(("error", exc))
                return
        await results.put(("done", None))

    tasks = [asyncio.create_task(work(flow)) for flow in flows]
    try:
        remaining = len(flows)
        while remaining:
            kind, value = await results.get()
            if kind == "value":
                yield value
            elif kind == "done":
                remaining -= 1
            else:
                raise value
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_many(
    flows: Sequence[Flow[T]], connection: Connection, max_concurrency: int
) -> list[T | Exception]:
    """Drive several flows to completion, at most ``max_concurrency`` at once.

    With ``max_concurrency > 1`` the flows run on a bounded thread pool, else one after another
    in the calling thread. Returns, in the flows' order, each flow's result or the exception it
    raised: one failing flow does not stop the others. A flow that raised is closed.
    """

    def one(flow: Flow[T]) -> T | Exception:
        try:
            return run(flow, connection)
        except Exception as exc:
            return exc
        finally:
            flow.close()

    if max_concurrency <= 1 or len(flows) <= 1:
        return [one(flow) for flow in flows]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(max_concurrency, len(flows))) as pool:
        # each worker runs in a copy of the caller's context (capacity collectors follow)
        futures = [pool.submit(contextvars.copy_context().run, one, flow) for flow in flows]
        try:
            return [future.result() for future in futures]
        except BaseException:  # KeyboardInterrupt: start no more flows
            for future in futures:
                future.cancel()
            raise


async def arun_many(
    flows: Sequence[Flow[T]], connection: Connection, max_concurrency: int
) -> list[T | Exception]:
    """Async `run_many`: the flows run as tasks, at most ``max_concurrency`` at once."""
    import asyncio

    gate = asyncio.Semaphore(max(1, max_concurrency))

    async def one(flow: Flow[T]) -> T | Exception:
        async with gate:
            try:
                return await arun(flow, connection)
            except Exception as exc:
                return exc
            finally:
                flow.close()

    return list(await asyncio.gather(*(one(flow) for flow in flows)))
