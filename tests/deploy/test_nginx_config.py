"""deploy/nginx/chat.conf.template renders into a configuration nginx accepts.

`nginx -t` parses the rendered file with Debian's nginx (the version the
runtime load-balancer tests use); it opens no port. The test fails, never
skips, when nginx is missing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nginx_template
import pytest
from system_commands import system_command


def nginx() -> str:
    return system_command("nginx", "nginx", "these tests check its configuration")


def test_template_documents_every_placeholder() -> None:
    text = nginx_template.TEMPLATE.read_text()
    header = text.split("\nupstream", 1)[0]
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", text.removeprefix(header)))
    assert used == nginx_template.PLACEHOLDERS
    for name in used:
        assert f"${{{name}}}" in header, f"{name} is not described at the top of the template"


def test_rendering_refuses_a_missing_placeholder() -> None:
    with pytest.raises(KeyError, match="GATEWAY_SERVERS"):
        nginx_template.substitute(nginx_template.TEMPLATE.read_text(), {"NGINX_LISTEN": "80"})


@pytest.mark.parametrize("balance", ["ip_hash;", "", "least_conn;"])
def test_nginx_accepts_the_rendered_config(tmp_path: Path, balance: str) -> None:
    conf = nginx_template.write_standalone(
        tmp_path,
        listen="127.0.0.1:18080",
        auth=["127.0.0.1:8001"],
        message=["127.0.0.1:8002"],
        gateways=["127.0.0.1:8101", "127.0.0.1:8102"],
        gateway_balance=balance,
    )
    text = conf.read_text()
    assert "${" not in text
    assert "server 127.0.0.1:8101; server 127.0.0.1:8102;" in text
    result = subprocess.run(
        [nginx(), "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"nginx -t rejected the rendered template:\n{result.stderr}"
