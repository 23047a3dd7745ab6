"""docker-compose.yml as compose itself reads it (`docker-compose config`).

Rendering needs Debian's docker-compose binary but no container engine. The
test fails, never skips, when the binary is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import nginx_template
import pytest
import yaml
from system_commands import system_command

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"

# The variables compose requires (${NAME:?...}), with test values.
REQUIRED_ENV = {
    "RABBITMQ_USER": "chat",
    "RABBITMQ_PASSWORD": "rabbit-test-password",
    "GRAFANA_ADMIN_PASSWORD": "grafana-test-password",
    "MONGO_ROOT_PASSWORD": "mongo-root-test-password",
    "AUTH_MONGODB_PASSWORD": "mongo-auth-test-password",
    "MESSAGE_MONGODB_PASSWORD": "mongo-message-test-password",
    "JWT_PRIVATE_KEY_PATH": "./.dev/jwt-private.pem",
}
CHAT_SERVICES = {"auth": 8001, "message": 8002, "gateway": 8100}
INFRA = {"mongo", "redis", "rabbitmq"}
ALL_SERVICES = INFRA | set(CHAT_SERVICES) | {"nginx", "prometheus", "grafana"}
# Every setting the services read (CONTRACT §1 and the deployment brief).
SHARED_SETTINGS = {
    "CHAT_ENV",
    "REDIS_URL",
    "AMQP_URL",
    "AUTH_URL",
    "NAMESPACE",
    "LOG_LEVEL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "CORS_ORIGINS",
}


def docker_compose() -> str:
    return system_command(
        "docker-compose",
        "docker-compose",
        "these tests render docker-compose.yml with it (no container engine needed)",
    )


def run_config(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # An empty --env-file and a minimal environment: neither a developer's
    # .env nor the shell's variables may change what is being tested.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return subprocess.run(
        [docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = run_config(REQUIRED_ENV, tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    rendered = yaml.safe_load(result.stdout)
    assert isinstance(rendered, dict)
    return rendered


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]


def test_every_service_is_there(services: dict[str, Any]) -> None:
    assert set(services) == ALL_SERVICES


def test_gateway_runs_two_replicas(services: dict[str, Any]) -> None:
    assert int(services["gateway"]["deploy"]["replicas"]) == 2
    # A fixed container name or host port would stop compose from replicating it.
    assert "container_name" not in services["gateway"]
    assert "ports" not in services["gateway"]


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name


@pytest.mark.parametrize(("name", "port"), sorted(CHAT_SERVICES.items()))
def test_chat_service_healthcheck_asks_readyz(
    services: dict[str, Any], name: str, port: int
) -> None:
    test = services[name]["healthcheck"]["test"]
    # The slim images have no curl: the check is Python's urllib.
    assert test[:3] == ["CMD", "python", "-c"], test
    assert f"http://127.0.0.1:{port}/readyz" in test[3]


@pytest.mark.parametrize(("name", "port"), sorted(CHAT_SERVICES.items()))
def test_chat_service_runs_its_image(services: dict[str, Any], name: str, port: int) -> None:
    service = services[name]
    assert service["build"]["dockerfile"] == "deploy/docker/python-service.Dockerfile"
    assert Path(service["build"]["context"]).resolve() == REPO
    assert service["build"]["args"]["SERVICE"] == name
    assert service["image"].endswith(f"/{name}:dev")
    assert service["command"] == ["--host", "0.0.0.0", "--port", str(port)]


@pytest.mark.parametrize("name", sorted(CHAT_SERVICES))
def test_chat_service_is_hardened(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", sorted(CHAT_SERVICES))
def test_chat_service_settings(services: dict[str, Any], name: str) -> None:
    env = services[name]["environment"]
    assert set(env) >= SHARED_SETTINGS, SHARED_SETTINGS - set(env)
    assert env["CHAT_ENV"] == "prod"
    assert env["AMQP_URL"] == "amqp://chat:rabbit-test-password@rabbitmq:5672/"
    assert env["AUTH_URL"] == "http://auth:8001"
    assert env["REDIS_URL"].startswith("redis://redis:6379/")


def test_auth_reads_its_key_from_a_mounted_secret(config: dict[str, Any]) -> None:
    auth = config["services"]["auth"]
    assert auth["environment"]["JWT_PRIVATE_KEY_FILE"] == "/run/secrets/jwt-private.pem"
    assert "TRUST_FORWARDED_FOR" not in auth["environment"]
    assert "172.16.0.0/12" in auth["environment"]["TRUSTED_PROXIES"].split(",")
    assert [s["source"] if isinstance(s, dict) else s for s in auth["secrets"]] == [
        "jwt-private.pem"
    ]
    assert Path(config["secrets"]["jwt-private.pem"]["file"]) == REPO / ".dev/jwt-private.pem"
    # The key lives in a git-ignored place.
    gitignore = (REPO / ".gitignore").read_text().split()
    assert ".dev/" in gitignore
    # No other service sees it.
    for name, service in config["services"].items():
        if name != "auth":
            assert "secrets" not in service, name


def test_gateway_serves_the_web_client_same_origin(services: dict[str, Any]) -> None:
    env = services["gateway"]["environment"]
    assert env["PUBLIC_AUTH_URL"] == ""
    assert env["PUBLIC_MESSAGE_URL"] == ""
    # Time to drain its sockets before the SIGKILL.
    assert services["gateway"]["stop_grace_period"] in ("60s", "1m", "1m0s")


EXPECTED_DEPENDENCIES = {
    "auth": INFRA,
    "message": INFRA | {"auth"},
    "gateway": INFRA | {"auth", "message"},
    "nginx": set(CHAT_SERVICES),
    "grafana": {"prometheus"},
}


@pytest.mark.parametrize(("name", "needs"), sorted(EXPECTED_DEPENDENCIES.items()))
def test_start_order_waits_for_health(services: dict[str, Any], name: str, needs: set[str]) -> None:
    depends_on = services[name]["depends_on"]
    assert set(depends_on) == needs
    for dependency, rule in depends_on.items():
        assert rule["condition"] == "service_healthy", (name, dependency)


@pytest.mark.parametrize("name", ["auth", "message"])
def test_each_service_has_its_own_database_and_user(services: dict[str, Any], name: str) -> None:
    env = services[name]["environment"]
    database = f"chat_{name}"
    assert env["MONGODB_DB"] == database
    url = urlsplit(env["MONGODB_URL"])
    assert (url.username, url.password) == (database, f"mongo-{name}-test-password")
    assert url.hostname == "mongo"
    assert url.path == f"/{database}"
    # Transactions need a replica set; the user is defined in the service's own database.
    assert parse_qs(url.query) == {"replicaSet": ["rs0"], "authSource": [database]}
    # The gateway keeps nothing in MongoDB and gets no credentials for it.
    assert "MONGODB_URL" not in services["gateway"]["environment"]


def test_mongo_creates_the_service_users_with_access_control(services: dict[str, Any]) -> None:
    mongo = services["mongo"]
    assert "--keyFile" in mongo["command"]
    init = mounts(mongo)["/docker-entrypoint-initdb.d/create-service-users.js"]
    script = Path(init).read_text()
    for name in ("chat_auth", "chat_message"):
        assert f'"{name}"' in script
    assert 'role: "readWrite", db: name' in script
    env = mongo["environment"]
    assert env["AUTH_MONGODB_PASSWORD"] == "mongo-auth-test-password"
    assert env["MESSAGE_MONGODB_PASSWORD"] == "mongo-message-test-password"
    assert env["MONGO_INITDB_ROOT_PASSWORD"] == "mongo-root-test-password"


def test_mongo_is_a_replica_set(services: dict[str, Any]) -> None:
    mongo = services["mongo"]
    assert "--replSet" in mongo["command"]
    assert mongo["command"][mongo["command"].index("--replSet") + 1] == "rs0"
    check = " ".join(mongo["healthcheck"]["test"])
    # The healthcheck initiates the set, naming the member as clients reach it.
    assert "rs.initiate" in check
    assert "mongo:27017" in check
    assert "isWritablePrimary" in check


def test_rabbitmq_account_comes_from_the_environment(services: dict[str, Any]) -> None:
    env = services["rabbitmq"]["environment"]
    assert env["RABBITMQ_DEFAULT_USER"] == "chat"
    assert env["RABBITMQ_DEFAULT_PASS"] == "rabbit-test-password"


def test_only_the_edge_publishes_ports_and_on_loopback(services: dict[str, Any]) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"nginx", "prometheus", "grafana", "rabbitmq"}
    for name in published:
        for port in services[name]["ports"]:
            host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


@pytest.mark.parametrize("variable", sorted(REQUIRED_ENV))
def test_a_missing_required_variable_stops_compose(variable: str, tmp_path: Path) -> None:
    env = {k: v for k, v in REQUIRED_ENV.items() if k != variable}
    result = run_config(env, tmp_path)
    assert result.returncode != 0
    assert variable in result.stderr


def test_env_example_lists_every_variable_and_renders(tmp_path: Path) -> None:
    code = "\n".join(
        line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    compose_vars = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", code))
    example: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            example[name.strip()] = value
    assert compose_vars <= set(example), f"missing from .env.example: {compose_vars - set(example)}"
    assert set(example) <= compose_vars, f"unused in compose: {set(example) - compose_vars}"
    # Filled in the way the comments ask, the example is a working .env.
    filled = {k: v or REQUIRED_ENV.get(k, "x") for k, v in example.items()}
    result = run_config(filled, tmp_path)
    assert result.returncode == 0, result.stderr


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source of a service's volumes, from either compose's output style.

    docker-compose 1.x prints "SOURCE:TARGET:MODE" strings, Compose v2 mappings.
    """
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = volume.get("source", "")
        else:
            source, target = volume.split(":")[:2]
            found[target] = source
    return found


def test_bind_mounted_files_exist(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for source in mounts(service).values():
            if source.startswith("/"):
                assert Path(source).exists(), f"{name} mounts {source}, which does not exist"


# --- nginx, as compose configures it ---


def nginx_conf_from_compose(services: dict[str, Any]) -> str:
    nginx = services["nginx"]
    templates = {
        target: source
        for target, source in mounts(nginx).items()
        if target.startswith("/etc/nginx/templates/")
    }
    assert templates == {"/etc/nginx/templates/default.conf.template": str(nginx_template.TEMPLATE)}
    env = nginx["environment"]
    assert set(env) >= nginx_template.PLACEHOLDERS
    return nginx_template.substitute(nginx_template.TEMPLATE.read_text(), env)


def locations(conf: str) -> dict[str, str]:
    """location -> the upstream it proxies to (or "" for one that answers itself)."""
    routes = {}
    for match in re.finditer(r"location\s+(=\s+)?(\S+)\s*\{(.*?)\}", conf, re.S):
        exact, path, body = match.groups()
        upstream = re.search(r"proxy_pass\s+http://(\w+)", body)
        routes[("= " if exact else "") + path] = upstream.group(1) if upstream else ""
    return routes


def test_nginx_routes(services: dict[str, Any]) -> None:
    routes = locations(nginx_conf_from_compose(services))
    assert routes["/v1/auth/"] == "chat_auth"
    assert routes["= /v1/users"] == "chat_auth"
    assert routes["/v1/users/"] == "chat_auth"
    assert routes["/.well-known/"] == "chat_auth"
    assert routes["/v1/"] == "chat_message"
    assert routes["/socket.io/"] == "chat_gateway"
    assert routes["/"] == "chat_gateway"
    assert routes["= /metrics"] == ""


def test_nginx_upstreams_reach_every_replica(services: dict[str, Any]) -> None:
    conf = nginx_conf_from_compose(services)
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{(.*?)\}", conf, re.S))
    assert "server auth:8001;" in upstreams["chat_auth"]
    assert "server message:8002;" in upstreams["chat_message"]
    # The service name resolves to every gateway replica.
    assert "server gateway:8100;" in upstreams["chat_gateway"]
    # Long-polling needs each client pinned to one gateway.
    assert "ip_hash;" in upstreams["chat_gateway"]


def test_nginx_passes_websockets(services: dict[str, Any]) -> None:
    conf = nginx_conf_from_compose(services)
    assert re.search(r"map\s+\$http_upgrade\s+\$connection_upgrade", conf)
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    socket_io = re.search(r"location /socket.io/ \{(.*?)\}", conf, re.S)
    assert socket_io
    body = socket_io.group(1)
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", body)
    assert read_timeout
    assert int(read_timeout.group(1)) >= 600
    assert "proxy_http_version 1.1;" in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf


def test_monitoring_mounts_match_their_configs(services: dict[str, Any]) -> None:
    prometheus = mounts(services["prometheus"])
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    assert prometheus["/etc/prometheus/prometheus.yml"] == str(
        REPO / "deploy/prometheus/prometheus.yml"
    )
    for rule_file in config["rule_files"]:
        assert prometheus[rule_file] == str(REPO / "deploy/prometheus" / Path(rule_file).name)

    grafana = mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"] == str(REPO / "deploy/grafana/provisioning")
    providers = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/chat.yml").read_text()
    )["providers"]
    for provider in providers:
        assert grafana[provider["options"]["path"]] == str(REPO / "deploy/grafana/dashboards")


def test_nginx_headers_reach_every_location(services: dict[str, Any]) -> None:
    # A location with a proxy_set_header of its own silently loses every
    # server-level one (X-Forwarded-For, Upgrade, ...): keep them all above.
    conf = nginx_conf_from_compose(services)
    for match in re.finditer(r"location\s+[^{]*\{(.*?)\}", conf, re.S):
        assert "proxy_set_header" not in match.group(1), match.group(0)
