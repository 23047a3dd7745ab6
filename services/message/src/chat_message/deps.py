"""FastAPI dependency handing routes the service's use cases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chat_message.services import MessageServices


def _services(request: Request) -> MessageServices:
    services: MessageServices = request.app.state.services
    return services


Services = Annotated[MessageServices, Depends(_services)]
