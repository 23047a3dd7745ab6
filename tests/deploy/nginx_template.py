"""Render deploy/nginx/chat.conf.template for a bare nginx on loopback.

Compose renders the template with the official image's envsubst step; tests
render it here, with the same placeholders (documented at the top of the
template), and wrap it into a complete nginx.conf that a non-packaged nginx
run (`nginx -p PREFIX -c PREFIX/nginx.conf`) can use without touching /etc,
/var/log or /run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "nginx" / "chat.conf.template"
PLACEHOLDERS = frozenset(
    {"NGINX_LISTEN", "AUTH_SERVERS", "MESSAGE_SERVERS", "GATEWAY_SERVERS", "GATEWAY_BALANCE"}
)
# Only ${NAME} is a placeholder; nginx's own variables are written $name.
_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def server_lines(addresses: Sequence[str], params: str = "") -> str:
    """`server` directives for an upstream block: ["127.0.0.1:8101", ...] -> text."""
    suffix = f" {params}" if params else ""
    return " ".join(f"server {address}{suffix};" for address in addresses)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """envsubst for ${NAME}: every placeholder in the text must have a value."""
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise KeyError(f"no value for placeholders {missing}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def render(
    *,
    listen: str,
    auth: Sequence[str],
    message: Sequence[str],
    gateways: Sequence[str],
    gateway_balance: str = "ip_hash;",
) -> str:
    """The http-context snippet for the given listen address and upstream addresses."""
    return substitute(
        TEMPLATE.read_text(),
        {
            "NGINX_LISTEN": listen,
            "AUTH_SERVERS": server_lines(auth),
            "MESSAGE_SERVERS": server_lines(message),
            "GATEWAY_SERVERS": server_lines(gateways),
            "GATEWAY_BALANCE": gateway_balance,
        },
    )


def standalone_config(snippet: str, prefix: Path) -> str:
    """A complete nginx.conf around `snippet` whose files all live under `prefix`.

    Start it with `nginx -p PREFIX -c PREFIX/nginx.conf -g "daemon off;"`.
    """
    prefix = prefix.resolve()
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    return f"""\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log notice;
events {{
    worker_connections 1024;
}}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{snippet}
}}
"""


def write_standalone(prefix: Path, **render_args: object) -> Path:
    """Render the template (arguments as for `render`) into PREFIX/nginx.conf."""
    conf = prefix / "nginx.conf"
    prefix.mkdir(parents=True, exist_ok=True)
    conf.write_text(standalone_config(render(**render_args), prefix))  # type: ignore[arg-type]
    return conf
