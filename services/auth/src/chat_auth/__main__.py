"""`chat-auth --host H --port P`: run the auth service."""

from __future__ import annotations

from chat_auth.app import create_app
from chat_auth.settings import AuthSettings
from chat_platform.logging import configure_logging
from chat_platform.serve import parse_args, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args("auth", 8001, argv)
    settings = AuthSettings()
    configure_logging("auth", settings.log_level)
    run(create_app(settings), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
