"""What the sync and async facades share: their verbs, declared once (``QueueMethods``,
``EngineMethods``), and how they check a client and translate its errors."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

from .verbs import EngineVerbs, QueueVerbs

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Gen = Generator[Any, Any, R]


class AsyncFacade:
    """Base of the asyncio facades: a verb's method returns an awaitable of its result."""


class Method(Protocol[P, R_co]):
    """The type of a ``verb``: a method returning R on the sync facades, an awaitable of R on
    the asyncio ones (what ``_run`` returns on each)."""

    @overload
    def __get__(self, facade: None, owner: type) -> Callable[Concatenate[Any, P], Any]: ...
    @overload
    def __get__(self, facade: AsyncFacade, owner: type) -> Callable[P, Awaitable[R_co]]: ...
    @overload
    def __get__(self, facade: object, owner: type) -> Callable[P, R_co]: ...


def verb(generator: Callable[Concatenate[Any, P], Gen[R]]) -> Method[P, R]:
    """A generator verb as a facade's method: the facade's ``_run`` drives it (``sync.Engine``'s
    returns the result, ``aio.AsyncEngine``'s is a coroutine), so one method serves both."""

    @functools.wraps(generator)
    def method(self: Any, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self._run(generator(self._verbs, *args, **kwargs))

    return method  # type: ignore[return-value]


class QueueMethods:
    """One queue's verbs (see ``verbs.QueueVerbs`` for what each does), run by its engine."""

    def __init__(self, engine: Any, verbs: QueueVerbs) -> None:
        self._run = engine._run
        self._verbs = verbs
        self.project = verbs.project
        self.name = verbs.name

    create = verb(QueueVerbs.create)
    update = verb(QueueVerbs.update)
    ensure = verb(QueueVerbs.ensure)
    info = verb(QueueVerbs.info)
    clear = verb(QueueVerbs.clear)
    delete = verb(QueueVerbs.delete)
    put = verb(QueueVerbs.put)
    push = verb(QueueVerbs.push)
    forward = verb(QueueVerbs.forward)
    reserve = verb(QueueVerbs.reserve)
    pull = verb(QueueVerbs.pull)
    peek = verb(QueueVerbs.peek)
    get = verb(QueueVerbs.get)
    delete_message = verb(QueueVerbs.delete_message)
    delete_messages = verb(QueueVerbs.delete_messages)
    delete_and_reserve = verb(QueueVerbs.delete_and_reserve)
    touch = verb(QueueVerbs.touch)
    release = verb(QueueVerbs.release)
    settle = verb(QueueVerbs.settle)
    release_reserved = verb(QueueVerbs.release_reserved)
    maintain = verb(QueueVerbs.maintain)
    retry_stuck = verb(QueueVerbs.retry_stuck)
    set_push = verb(QueueVerbs.set_push)
    update_push = verb(QueueVerbs.update_push)
    add_subscribers = verb(QueueVerbs.add_subscribers)
    replace_subscribers = verb(QueueVerbs.replace_subscribers)
    remove_subscribers = verb(QueueVerbs.remove_subscribers)
    claim_pushes = verb(QueueVerbs.claim_pushes)
    report_push = verb(QueueVerbs.report_push)
    ack_push = verb(QueueVerbs.ack_push)
    ack_push_by_token = verb(QueueVerbs.ack_push_by_token)
    push_status = verb(QueueVerbs.push_status)
    add_alerts = verb(QueueVerbs.add_alerts)
    replace_alerts = verb(QueueVerbs.replace_alerts)
    remove_alerts = verb(QueueVerbs.remove_alerts)
    remove_alert = verb(QueueVerbs.remove_alert)


class EngineMethods:
    """The verbs across queues (see ``verbs.EngineVerbs``), run by the engine."""

    _verbs: EngineVerbs

    list_queues = verb(EngineVerbs.list_queues)
    count_queues = verb(EngineVerbs.count_queues)
    list_details = verb(EngineVerbs.list_details)
    projects = verb(EngineVerbs.projects)
    stats = verb(EngineVerbs.stats)
    find_queue = verb(EngineVerbs.find_queue)
    sweep = verb(EngineVerbs.sweep)
    lease = verb(EngineVerbs.lease)
    due_push_queues = verb(EngineVerbs.due_push_queues)
    put_subscription = verb(EngineVerbs.put_subscription)
    get_subscription = verb(EngineVerbs.get_subscription)
    list_subscriptions = verb(EngineVerbs.list_subscriptions)
    delete_subscription = verb(EngineVerbs.delete_subscription)
    emit = verb(EngineVerbs.emit)
    project_usage = verb(EngineVerbs.project_usage)
    set_project_limits = verb(EngineVerbs.set_project_limits)


def drive(flow: Generator[Any, Any, R], answer: Callable[[Any], Any]) -> R:
    """Runs a sans-IO flow (a script call, a write waiting for replicas) to its end: ``answer``
    gives the reply to each request it yields."""
    try:
        request = flow.send(None)
        while True:
            request = flow.send(answer(request))
    except StopIteration as done:
        return done.value


async def drive_async(flow: Generator[Any, Any, R], answer: Callable[[Any], Awaitable[Any]]) -> R:
    """``drive`` for the asyncio engine: ``answer`` is awaited."""
    try:
        request = flow.send(None)
        while True:
            request = flow.send(await answer(request))
    except StopIteration as done:
        return done.value


def pipeline_replies(replies: list[Any], raise_on_error: bool) -> list[Any]:
    """Replies of commands sent together (an error reply as its value), as a redis-py pipeline's
    ``execute`` gives them: with ``raise_on_error``, the first error reply raised instead."""
    from redis.exceptions import ResponseError

    if raise_on_error:
        error = next((reply for reply in replies if isinstance(reply, ResponseError)), None)
        if error is not None:
            raise error
    return replies


def is_cluster(client: Any) -> bool:
    """A ``redis.RedisCluster`` or ``redis.asyncio.RedisCluster``."""
    return hasattr(client, "get_nodes")


def check_client(client: Any) -> None:
    """Replies must stay bytes: bodies are binary-safe and ids are parsed from them."""
    from .errors import ConfigurationError

    get_encoder = getattr(client, "get_encoder", None)
    if get_encoder is not None and get_encoder().decode_responses:
        raise ConfigurationError("pass a Redis client created with decode_responses=False")


def translate(exc: Exception) -> Exception:
    """Redis errors -> engine errors (script replies by code; connection trouble -> Unavailable)."""
    from redis.exceptions import ResponseError

    from .errors import Unavailable, from_reply

    if is_transient(exc):
        return Unavailable(f"Redis is unavailable: {exc or type(exc).__name__}")
    if isinstance(exc, ResponseError):
        return from_reply(str(exc)) or exc
    return exc


def is_transient(exc: Exception) -> bool:
    """Whether ``exc`` says Redis cannot answer now (and may later), rather than what it answered.

    On a cluster, a master that is down shows as CLUSTERDOWN (the cluster stops serving), TRYAGAIN
    (slots moving), READONLY (a replica not yet promoted) or an uncovered slot: all pass with
    time, like a lost connection. So does BUSY: a script (of another program on that Redis) has
    run past busy-reply-threshold, and Redis answers every other call with it until it ends."""
    import builtins

    from redis.exceptions import (
        ClusterDownError, ConnectionError, ReadOnlyError, RedisClusterException, ResponseError,
        SlotNotCoveredError, TimeoutError, TryAgainError,
    )

    transient = (ConnectionError, TimeoutError, builtins.TimeoutError, ClusterDownError, TryAgainError,
                 ReadOnlyError, SlotNotCoveredError)
    return (isinstance(exc, transient) or _cluster_unreachable(exc, RedisClusterException)
            or _closed_while_sending(exc) or isinstance(exc, ResponseError) and str(exc).startswith("BUSY "))


def _closed_while_sending(exc: Exception) -> bool:
    """redis-py's asyncio connection, closed by another task while a command awaited its health
    check (a Sentinel pool drops its connections when the master moves), writes to a writer that
    is gone: an AttributeError from inside redis-py (its issue #3546 is the same race). Nothing
    was sent, and Redis is merely moving: transient, not a bug of ours to answer with a 500."""
    if not isinstance(exc, AttributeError):
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__") == "redis.asyncio.connection"


def _cluster_unreachable(exc: Exception, cluster_exception: type[Exception]) -> bool:
    """redis-py's cluster client says "no node answers" and "slots not covered" (while it learns
    the layout again) with its generic exception, which also reports misuse: tell them by text."""
    text = str(exc)
    return isinstance(exc, cluster_exception) and text.startswith(
        ("Redis Cluster cannot be connected", "All slots are not covered"))
