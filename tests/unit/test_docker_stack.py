"""docker/ holds together without Docker: the compose file, the image and the monitoring config.

This machine has no Docker engine, so these tests read the files instead of running them: the
services and their wiring, the settings the services are given, the ports they publish.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
import yaml

from feedcore.adapters.metrics import Metrics, process_registry
from feedcore.entrypoints.settings import PREFIX, Settings

ROOT: Final = Path(__file__).parents[2]
DOCKER: Final = ROOT / "docker"
COMPOSE: Final = DOCKER / "compose.yaml"

SERVICES: Final = {"kafka", "postgres", "redis", "api", "processor", "prometheus", "grafana"}
FEEDCORE_SERVICES: Final = ("api", "processor")
INFRASTRUCTURE: Final = {"kafka", "postgres", "redis"}
ALL_INTERFACES: Final = "0.0.0.0"  # noqa: S104  # an address looked for in the files, never bound here

# FEEDCORE_* variables compose.yaml already passes that this version's Settings does not define
# yet. Each is a promise about a later version: once Settings gains the field, the test below that
# checks this set fails, and the name must be removed from here.
NOT_YET_SETTINGS: Final[frozenset[str]] = frozenset()


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: object = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def mapping(value: object, where: str) -> dict[str, Any]:
    assert isinstance(value, dict), f"{where} is not a mapping"
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: mapping(body, f"service {name}") for name, body in mapping(compose["services"], "services").items()}


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, written as a mapping or as a list of NAME=value."""
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(str(item).partition("=")[::2] for item in raw)
    return {str(name): str(value) for name, value in mapping(raw, "environment").items()}


def setting_field(variable: str) -> str:
    """The Settings field a variable sets, as Settings.from_env maps it."""
    assert variable.startswith(PREFIX)
    return variable.removeprefix(PREFIX).lower()


def settings_fields() -> set[str]:
    return {field.name for field in msgspec.structs.fields(Settings)}


def feedcore_variables(services: dict[str, dict[str, Any]]) -> set[str]:
    return {name for service in FEEDCORE_SERVICES for name in environment(services[service]) if name.startswith(PREFIX)}


def published_ports(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(host address, container port) for each port a service publishes; None is every address."""
    ports: list[tuple[str | None, str]] = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            host_ip = port.get("host_ip")
            ports.append((None if host_ip is None else str(host_ip), str(port["target"])))
            continue
        # HOST_IP:HOST_PORT:CONTAINER_PORT, HOST_PORT:CONTAINER_PORT or CONTAINER_PORT (maybe /tcp).
        parts = str(port).rsplit(":", 2)
        ports.append((parts[0] if len(parts) == 3 else None, parts[-1].partition("/")[0]))
    return ports


def listeners(value: str) -> dict[str, str]:
    """NAME://host:port,... as {NAME: host:port}."""
    return dict(item.strip().partition("://")[::2] for item in value.split(","))


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, f"{path} ends inside a continued line"
    return instructions


def test_the_compose_file_has_exactly_the_stack(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


def test_every_service_others_wait_for_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    waited_for = {dependency for service in services.values() for dependency in service.get("depends_on", {})}
    assert waited_for == INFRASTRUCTURE
    for name in waited_for:
        check = mapping(services[name].get("healthcheck"), f"{name}.healthcheck")
        assert not check.get("disable", False), name
        assert isinstance(check.get("test"), list), f"{name}: the check runs no command"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_the_feedcore_services_start_once_kafka_postgres_and_redis_are_healthy(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in FEEDCORE_SERVICES:
        depends_on = mapping(services[name].get("depends_on"), f"{name}.depends_on")
        assert set(depends_on) == INFRASTRUCTURE, name
        for dependency, condition in depends_on.items():
            assert mapping(condition, f"{name}.depends_on.{dependency}") == {"condition": "service_healthy"}


def test_every_published_port_is_bound_to_loopback(services: dict[str, dict[str, Any]]) -> None:
    published = {name: published_ports(service) for name, service in services.items()}
    assert {name for name, ports in published.items() if ports} == {"api", "prometheus", "grafana"}
    for name, ports in published.items():
        assert all(host_ip == "127.0.0.1" for host_ip, _ in ports), f"{name} publishes {ports}"
        assert services[name].get("network_mode") != "host", name


def test_the_feedcore_services_run_on_the_stack_with_a_secret_from_the_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in FEEDCORE_SERVICES:
        env = environment(services[name])
        assert env["FEEDCORE_DATABASE_URL"] == "postgresql://feedcore:feedcore@postgres:5432/feedcore"
        assert env["FEEDCORE_REDIS_URL"] == "redis://redis:6379/0"
        # Required at `docker compose up`, never a value written into the file.
        assert env["FEEDCORE_JWT_SECRET"].startswith("${FEEDCORE_JWT_SECRET:?"), name
    postgres = environment(services["postgres"])
    assert {postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]} == {"feedcore"}


def test_every_feedcore_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    unknown = {name for name in feedcore_variables(services) if setting_field(name) not in settings_fields()}
    assert unknown == NOT_YET_SETTINGS


def test_the_settings_not_yet_known_are_really_unknown(services: dict[str, dict[str, Any]]) -> None:
    # When this fails, Settings has gained the field: take the name out of NOT_YET_SETTINGS.
    assert {setting_field(name) for name in NOT_YET_SETTINGS} & settings_fields() == set()
    assert feedcore_variables(services) >= NOT_YET_SETTINGS


def test_kafka_advertises_the_address_the_services_bootstrap_from(services: dict[str, dict[str, Any]]) -> None:
    kafka = environment(services["kafka"])
    advertised = listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    bound = listeners(kafka["KAFKA_LISTENERS"])
    for name in FEEDCORE_SERVICES:
        bootstrap = environment(services[name])["FEEDCORE_KAFKA_BOOTSTRAP"]
        assert bootstrap in advertised.values(), f"{name} bootstraps from {bootstrap}, Kafka advertises {advertised}"
        listener = next(listener for listener, address in advertised.items() if address == bootstrap)
        host, _, port = bootstrap.rpartition(":")
        assert host == "kafka", "the address must be the kafka service's name on the stack's network"
        assert bound[listener].rpartition(":")[2] == port, f"{listener} is advertised on {port} but bound elsewhere"


def test_kafka_is_one_combined_node_with_single_replica_internal_topics(services: dict[str, dict[str, Any]]) -> None:
    kafka = environment(services["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    controller = kafka["KAFKA_CONTROLLER_LISTENER_NAMES"]
    protocols = dict(item.split(":", 1) for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners(kafka["KAFKA_LISTENERS"])) <= set(protocols)
    assert controller not in listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    voter = f"{kafka['KAFKA_NODE_ID']}@kafka:{listeners(kafka['KAFKA_LISTENERS'])[controller].rpartition(':')[2]}"
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voter
    for variable in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert kafka[variable] == "1", variable
    assert kafka["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"


def test_prometheus_scrapes_the_api_and_the_processor_where_they_serve(services: dict[str, dict[str, Any]]) -> None:
    config = load_yaml(DOCKER / "prometheus" / "prometheus.yml")
    targets = {
        str(target)
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    api_port = published_ports(services["api"])[0][1]
    metrics_port = environment(services["processor"])["FEEDCORE_METRICS_PORT"]
    assert targets == {f"api:{api_port}", f"processor:{metrics_port}"}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in config["scrape_configs"])
    assert config["global"]["scrape_interval"] == "5s"


def test_grafana_is_given_prometheus_as_its_default_data_source(services: dict[str, dict[str, Any]]) -> None:
    config = load_yaml(DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = config["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == ("prometheus", "http://prometheus:9090", True)
    assert published_ports(services["prometheus"]) == [("127.0.0.1", "9090")]


def test_every_file_compose_refers_to_exists(services: dict[str, dict[str, Any]]) -> None:
    built = {
        name: mapping(service["build"], f"{name}.build") for name, service in services.items() if "build" in service
    }
    assert set(built) == set(FEEDCORE_SERVICES)
    for build in built.values():
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT
        assert (context / build["dockerfile"]).is_file()
    mounted = [
        str(volume).split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if str(volume).startswith(".")
    ]
    assert len(mounted) == 2  # prometheus.yml and grafana's provisioning folder
    for source in mounted:
        assert (COMPOSE.parent / source).exists(), source


def test_the_image_runs_feedcore_as_a_user_and_checks_its_health() -> None:
    instructions = dockerfile_instructions(DOCKER / "Dockerfile")
    keywords = [keyword for keyword, _ in instructions]
    arguments = dict(instructions)  # the last of each instruction is the one that counts
    assert arguments["FROM"] == "python:3.11-slim"
    assert json.loads(arguments["ENTRYPOINT"]) == ["feedcore"]
    assert json.loads(arguments["CMD"]) == ["serve", "--host", ALL_INTERFACES]
    assert any("pip install --no-cache-dir ." in args for keyword, args in instructions if keyword == "RUN")
    assert "USER" in keywords
    assert arguments["USER"] not in {"root", "0"}
    assert keywords.index("USER") > max(i for i, keyword in enumerate(keywords) if keyword == "RUN")
    assert "/healthz" in arguments["HEALTHCHECK"]
    assert "CMD" in arguments["HEALTHCHECK"].split()


def test_the_dockerfile_reader_joins_continued_lines(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('# a comment\nFROM base\nRUN one \\\n    two\n\nHEALTHCHECK CMD ["x"]\nENTRYPOINT ["a"]\n')
    assert dockerfile_instructions(dockerfile) == [
        ("FROM", "base"),
        ("RUN", "one two"),
        ("HEALTHCHECK", 'CMD ["x"]'),
        ("ENTRYPOINT", '["a"]'),
    ]


def test_the_port_reader_sees_ports_open_to_every_address() -> None:
    service = {"ports": ["127.0.0.1:1:2", "3:4", "5/udp", {"target": 6, "host_ip": ALL_INTERFACES}, {"target": 7}]}
    assert published_ports(service) == [
        ("127.0.0.1", "2"),
        (None, "4"),
        (None, "5"),
        (ALL_INTERFACES, "6"),
        (None, "7"),
    ]


def test_grafana_is_given_a_dashboard_whose_every_query_names_exported_families() -> None:
    provisioning = DOCKER / "grafana" / "provisioning"
    (provider,) = load_yaml(provisioning / "dashboards" / "feedcore.yml")["providers"]
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards"  # where compose mounts it
    dashboard = json.loads((provisioning / "dashboards" / "feedcore.json").read_text(encoding="utf-8"))
    (source,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]

    exported = {
        sample.name
        for family in Metrics(process_registry()).registry.collect()
        for sample in [*family.samples, *_declared(family)]
    }
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:feedcore|process)_[a-z_]+\b", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, queried - exported
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {source["uid"]}
    # A panel for each figure the service exports.
    families = {name.removesuffix("_total").removesuffix("_bucket") for name in queried}
    assert {family.name for family in Metrics(process_registry()).registry.collect()} - families <= {
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_cpu_seconds",
        "process_open_fds",
        "process_max_fds",
        "python_info",
    }


def _declared(family: Any) -> list[Any]:
    """The sample names a family will have once it moves (labelled families have none before)."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    return [_Named(family.name + suffix) for suffix in suffixes.get(family.type, [""])]


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name
