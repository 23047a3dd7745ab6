"""`chat-auth --host H --port P`: run the auth service."""

from __future__ import annotations

from chat_auth.app import create_app
from chat_auth.settings import AuthSettings
from chat_platform.serve import main_of

main = main_of("auth", 8001, AuthSettings, create_app)

if __name__ == "__main__":
    main(None)
