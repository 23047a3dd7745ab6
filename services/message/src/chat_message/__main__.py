"""`chat-message --host H --port P`: run the message service."""

from __future__ import annotations

from chat_message.app import create_app
from chat_message.settings import MessageSettings
from chat_platform.logging import configure_logging
from chat_platform.serve import parse_args, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args("message", 8002, argv)
    settings = MessageSettings()
    configure_logging("message", settings.log_level)
    run(create_app(settings), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
