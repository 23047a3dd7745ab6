"""Test kit of the chat backend: real services for tests, services as processes."""

from chat_testkit.api import ChatApi, User
from chat_testkit.process import ServiceProcess
from chat_testkit.services import free_port, port_open
from chat_testkit.stack import Stack
from chat_testkit.waiting import eventually

__all__ = ["ChatApi", "ServiceProcess", "Stack", "User", "eventually", "free_port", "port_open"]
