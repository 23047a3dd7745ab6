"""`chat-message --host H --port P`: run the message service."""

from __future__ import annotations

from chat_message.app import create_app
from chat_message.settings import MessageSettings
from chat_platform.serve import main_of

main = main_of("message", 8002, MessageSettings, create_app)

if __name__ == "__main__":
    main(None)
