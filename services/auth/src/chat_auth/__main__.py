"""`chat-auth --host H --port P`: run the auth service; `chat-auth migrate-db --from DB`: copy
auth's data out of a database shared with the message service (see `chat_auth.migrate`)."""

from __future__ import annotations

import sys

from chat_auth.app import create_app
from chat_auth.settings import AuthSettings
from chat_platform.serve import main_of

serve = main_of("auth", 8001, AuthSettings, create_app)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["migrate-db"]:
        from chat_auth.migrate import main as migrate_db

        migrate_db(args[1:])
    else:
        serve(args)


if __name__ == "__main__":
    main(None)
