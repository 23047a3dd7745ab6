"""FastAPI dependency handing routes the service's use cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response

from chat_message.services import MessageServices
from chat_platform.authn import CallerId
from chat_platform.ratelimit import Budgets

F = TypeVar("F", bound=Callable[..., Any])


def _services(request: Request) -> MessageServices:
    services: MessageServices = request.app.state.services
    return services


Services = Annotated[MessageServices, Depends(_services)]


def budget(action: str) -> Any:
    """A route dependency spending the caller's budget of `action` (429 once it is spent).

    The names are the socket's events where both doors do the same thing, so REST and the
    socket draw on one bucket.
    """

    async def spend(request: Request, user_id: CallerId) -> None:
        budgets: Budgets = request.app.state.budgets
        await budgets.spend(user_id, action)

    return Depends(spend)


def deletion(router: APIRouter, path: str, action: str) -> Callable[[F], F]:
    """`DELETE path` answering 204 with no body, spending the caller's budget of `action`."""
    return router.delete(
        path, status_code=204, response_class=Response, dependencies=[budget(action)]
    )
