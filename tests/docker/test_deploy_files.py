"""The deployment files (docker/) agree with each other, with the Makefile and with the code.

No Docker engine is needed: these tests read docker/compose.yaml, docker/Dockerfile,
docker/spark-defaults.conf and .dockerignore as text and check the facts a broken deployment would
only reveal at run time, on a cluster: a volume mounted at another path than RECSYS_ROOT (executors
write the tables directly), a Spark connection naming no master, an environment variable no code
reads, a pip sequence that lets pyspark-client break pandas UDFs again, an executor heap larger than
a worker. Compose's ``${NAME:-default}`` values are checked at their defaults.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from recsys.spark import MIN_JAVA

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
SPARK_DEFAULTS = DOCKER / "spark-defaults.conf"
DOCKERIGNORE = REPO / ".dockerignore"
MAKEFILE = REPO / "Makefile"
DAG = REPO / "dags" / "recsys_nightly.py"

AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
SPARK_MASTER = "spark-master"
SPARK_WORKERS = {"spark-worker-1", "spark-worker-2"}
SPARK_SERVICES = {SPARK_MASTER, *SPARK_WORKERS}
RECSYS_SERVICES = AIRFLOW_SERVICES | SPARK_SERVICES
# What each Airflow service runs (the argv words that must appear in its command).
AIRFLOW_COMMANDS = {
    "airflow-init": "airflow db migrate",
    "airflow-api-server": "airflow api-server",
    "airflow-scheduler": "airflow scheduler",
    "airflow-dag-processor": "airflow dag-processor",
    "airflow-triggerer": "airflow triggerer",
}
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


# --------------------------------------------------------------------------------------------
# Reading the files


def _interpolate(text: str) -> str:
    """Compose interpolation, nothing set: ``${A:-d}`` -> d, ``${A}`` -> "", ``$$`` -> ``$``."""

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return m.group("default") or ""

    return re.sub(r"\$\$|\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}", repl, text)


def _resolve(node: Any) -> Any:
    if isinstance(node, str):
        return _interpolate(node)
    if isinstance(node, dict):
        return {k: _resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return node


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml parsed (YAML anchors and ``<<`` merges resolved) at its default values."""
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), COMPOSE
    return _resolve(data)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> source (a named volume or a host path) of a service."""
    mounts = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            mounts[vol["target"]] = vol.get("source", "")
        else:
            source, _, rest = vol.partition(":")
            mounts[rest.split(":")[0] if rest else source] = source if rest else ""
    return mounts


def _argv(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def _option(argv: list[str], name: str, default: str | None = None) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else default


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile; continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, args = current.strip().partition(" ")
        out.append((word.upper(), args.strip()))
        current = ""
    return out


def _expand(value: str, known: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: known.get(m.group(1) or m.group(2), m.group(0)),
        value,
    )


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _instructions(DOCKERFILE)


@pytest.fixture(scope="module")
def image_env(dockerfile) -> dict[str, str]:
    """The image's ENV (ARG defaults expanded), as the last ENV of each name leaves it."""
    known: dict[str, str] = {}
    env: dict[str, str] = {}
    for word, args in dockerfile:
        if word == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            known[name.strip()] = value.strip()
        elif word == "ENV":
            tokens = shlex.split(args)
            pairs = (
                [t.split("=", 1) for t in tokens]
                if "=" in tokens[0]
                else [[tokens[0], " ".join(tokens[1:])]]
            )
            for name, value in pairs:
                env[name] = known[name] = _expand(value, known)
    return env


def _run_commands(dockerfile) -> list[str]:
    """Every shell command of the RUN instructions, split at ``&&``."""
    return [part.strip() for word, args in dockerfile if word == "RUN" for part in args.split("&&")]


def _copy_dest(dockerfile, source: str) -> str:
    for word, args in dockerfile:
        parts = [p for p in args.split() if not p.startswith("--")]
        if word == "COPY" and not args.startswith("--from") and parts[:-1] == [source]:
            return parts[-1].rstrip("/")
    pytest.fail(f"{DOCKERFILE} has no `COPY {source} <dest>`")


# --------------------------------------------------------------------------------------------
# compose.yaml: services, commands, health


def test_compose_has_every_service(compose):
    services = compose["services"]
    missing = ({"postgres"} | RECSYS_SERVICES) - set(services)
    assert not missing, f"{COMPOSE} lacks services {sorted(missing)}"
    for name, words in AIRFLOW_COMMANDS.items():
        assert words in " ".join(_argv(services[name])), f"{name} must run `{words}`"
    workers = [n for n, s in services.items() if WORKER_CLASS in _argv(s)]
    assert sorted(workers) == sorted(SPARK_WORKERS), "expected exactly two Spark workers"
    assert MASTER_CLASS in _argv(services[SPARK_MASTER])
    # One image for Airflow, driver and executors: the same Python, pyspark and recsys everywhere.
    images = {services[n].get("image") for n in RECSYS_SERVICES}
    assert len(images) == 1 and None not in images, f"one image for all, got {images}"


def test_workers_join_the_master(compose):
    services = compose["services"]
    master = _argv(services[SPARK_MASTER])
    url = f"spark://{_option(master, '--host', SPARK_MASTER)}:{_option(master, '--port', '7077')}"
    assert _option(master, "--host", SPARK_MASTER) == SPARK_MASTER
    for name in SPARK_WORKERS:
        argv = _argv(services[name])
        assert argv[argv.index(WORKER_CLASS) + 1] == url, f"{name} must join {url}"


def test_compose_builds_the_dockerfile(compose):
    for name in RECSYS_SERVICES:
        build = compose["services"][name].get("build")
        assert build, f"{name} has no build section"
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == REPO, f"{name}: the build context must be the repository root"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_health_checks_and_start_order(compose):
    services = compose["services"]
    for name, service in services.items():
        if name != "airflow-init":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on an unknown service {target}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
    for name in AIRFLOW_SERVICES:
        deps = services[name].get("depends_on") or {}
        assert deps.get("postgres", {}).get("condition") == "service_healthy", name
        if name != "airflow-init":
            init = deps.get("airflow-init", {}).get("condition")
            assert init == "service_completed_successfully", f"{name} must wait for the migration"
    for name in SPARK_WORKERS:
        deps = services[name].get("depends_on") or {}
        assert deps.get(SPARK_MASTER, {}).get("condition") == "service_healthy", name


def test_host_ports_do_not_clash(compose):
    seen: dict[str, str] = {}
    for name, service in compose["services"].items():
        for port in service.get("ports") or []:
            host = str(port).rsplit(":", 1)[0] if ":" in str(port) else str(port)
            assert host not in seen, f"host port {host} used by {seen.get(host)} and {name}"
            seen[host] = name
    assert seen.get("8080") == "airflow-api-server"


# --------------------------------------------------------------------------------------------
# The shared storage root


def test_one_volume_at_recsys_root_everywhere(compose, image_env):
    services = compose["services"]
    roots = {}
    sources = {}
    for name in sorted(RECSYS_SERVICES):
        env = _env(services[name])
        assert "RECSYS_ROOT" in env, f"{name} does not set RECSYS_ROOT"
        root = env["RECSYS_ROOT"]
        mounts = _mounts(services[name])
        assert root in mounts, f"{name}: nothing is mounted at RECSYS_ROOT={root}"
        roots[name], sources[name] = root, mounts[root]
    assert len(set(roots.values())) == 1, f"RECSYS_ROOT differs between services: {roots}"
    assert len(set(sources.values())) == 1, f"different volumes at RECSYS_ROOT: {sources}"
    volume = next(iter(sources.values()))
    assert volume in (compose.get("volumes") or {}), f"{volume} is not a named volume"
    assert image_env.get("RECSYS_ROOT") == next(iter(roots.values())), (
        "the image's RECSYS_ROOT differs from the mounted one"
    )


# --------------------------------------------------------------------------------------------
# Spark connection and what the Spark steps ship


def _spark_connection(compose) -> str:
    values = {
        _env(compose["services"][n]).get("AIRFLOW_CONN_SPARK_DEFAULT") for n in AIRFLOW_SERVICES
    }
    assert len(values) == 1 and None not in values, f"one connection for all: {values}"
    return values.pop()


def test_spark_connection_names_the_master(compose):
    conn = json.loads(_spark_connection(compose))
    assert conn["conn_type"] == "spark"
    url = conn["host"] if "://" in conn["host"] else f"spark://{conn['host']}"
    parsed = urlparse(url)
    port = conn.get("port") or parsed.port
    master = _argv(compose["services"][SPARK_MASTER])
    assert parsed.scheme == "spark"
    assert parsed.hostname == SPARK_MASTER, f"{url} does not name the {SPARK_MASTER} service"
    assert str(port) == _option(master, "--port", "7077"), f"{url}: not the master's port"
    assert conn.get("extra", {}).get("deploy-mode") == "client"


def test_spark_provider_resolves_the_connection(compose, tmp_path):
    """The installed Airflow Spark provider builds the intended spark-submit from it."""
    if not _has_module("airflow.providers.apache.spark"):
        pytest.skip("apache-airflow-providers-apache-spark is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW_CONN_SPARK_DEFAULT=_spark_connection(compose))
    code = (
        "import json\n"
        "from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook\n"
        "print(json.dumps(SparkSubmitHook(conn_id='spark_default')"
        "._build_spark_submit_command('/app.py')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    argv = json.loads(out.stdout.strip().splitlines()[-1])
    port = _option(_argv(compose["services"][SPARK_MASTER]), "--port", "7077")
    assert argv[0] == "spark-submit"
    assert _option(argv, "--master") == f"spark://{SPARK_MASTER}:{port}"
    assert _option(argv, "--deploy-mode") == "client"


def _has_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_py_files_is_the_zip_the_image_builds(compose, dockerfile):
    built = [
        m.group(1)
        for cmd in _run_commands(dockerfile)
        if (m := re.search(r"-m recsys\.package\s+(\S+)", cmd))
    ]
    assert len(built) == 1, f"{DOCKERFILE} must build the executor zip once, found {built}"
    for name in AIRFLOW_SERVICES:
        assert _env(compose["services"][name]).get("RECSYS_PY_FILES") == built[0], name


def test_executor_heap_fits_a_worker(compose, dockerfile, image_env):
    """recsys' 4g default executor heap would never start on a small worker: the image caps it."""
    conf_dir = image_env.get("SPARK_CONF_DIR")
    assert conf_dir, "the image sets no SPARK_CONF_DIR, so recsys' 4g executor default applies"
    assert _copy_dest(dockerfile, "docker/spark-defaults.conf") == f"{conf_dir}/spark-defaults.conf"
    conf = dict(
        line.split(None, 1)
        for line in SPARK_DEFAULTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    executor = _mib(conf["spark.executor.memory"].strip())
    for name in SPARK_WORKERS:
        worker = _mib(_option(_argv(compose["services"][name]), "--memory"))
        assert executor <= worker, f"spark.executor.memory exceeds {name}'s --memory"


def _dag_param(name: str) -> str:
    """The default of one of the DAG's params, read from its source (the DAG is not imported)."""
    if not DAG.exists():
        pytest.skip(f"{DAG.relative_to(REPO)} does not exist yet")
    m = re.search(rf"[\"']{name}[\"']\s*:\s*Param\(\s*[\"']?([\w.]+)", DAG.read_text())
    if not m:
        pytest.skip(f"{DAG.relative_to(REPO)} has no {name} param any more; nothing to check")
    return m.group(1)


def test_dag_executors_fit_a_worker(compose):
    """The DAG's default executor size must fit one worker, or its Spark steps wait forever."""
    memory = _mib(_dag_param("spark_executor_memory"))
    cores = int(_dag_param("spark_executor_cores"))
    for name in SPARK_WORKERS:
        argv = _argv(compose["services"][name])
        assert memory <= _mib(_option(argv, "--memory")), f"DAG executors outgrow {name}'s memory"
        assert cores <= int(_option(argv, "--cores")), f"DAG executors outgrow {name}'s cores"


def test_training_executors_fit_the_workers(compose):
    """Train and refit run ``train_workers`` executors of their own size: each must fit a worker,
    and the barrier stage needs all of them at once."""
    memory = _mib(_dag_param("train_executor_memory"))
    cores = int(_dag_param("train_executor_cores"))
    workers = int(_dag_param("train_workers"))
    slots = 0
    for name in SPARK_WORKERS:
        argv = _argv(compose["services"][name])
        assert memory <= _mib(_option(argv, "--memory")), f"training executors outgrow {name}"
        assert cores <= int(_option(argv, "--cores")), f"training executors outgrow {name}"
        slots += int(_option(argv, "--cores")) // cores
    assert workers <= slots, "the DAG's train_workers exceed the cluster's task slots"


def test_no_training_in_the_scheduler_container(compose):
    """Every heavy step is a Spark job: the scheduler container submits, the workers train."""
    text = DAG.read_text()
    assert "TrainJob(" in text and "RefitJob(" in text
    assert '"train",' not in text.split("def recsys_nightly")[1], "train runs as a command again"
    scheduler = " ".join(str(v) for v in compose["services"]["airflow-scheduler"].values())
    assert "tensorflow" not in scheduler.lower()


def _mib(size: str) -> float:
    m = re.fullmatch(r"(\d+)([kmgt]?)b?", size.lower())
    assert m, f"not a size: {size!r}"
    scale = {"": 1 / 2**20, "k": 1 / 1024, "m": 1, "g": 1024, "t": 2**20}[m.group(2)]
    return int(m.group(1)) * scale


# --------------------------------------------------------------------------------------------
# Environment variable names


def test_recsys_variables_are_read_by_the_code(compose, image_env):
    names = set(image_env)
    for service in compose["services"].values():
        names |= set(_env(service))
    names = {n for n in names if n.startswith("RECSYS_")}
    assert "RECSYS_ROOT" in names
    library = "\n".join(
        p.read_text() for folder in ("recsys", "jobs") for p in (REPO / folder).rglob("*.py")
    )
    unread = sorted(n for n in names if not re.search(rf"\b{n}\b", library))
    assert "RECSYS_ROOT" not in unread, "recsys/config.py no longer reads RECSYS_ROOT"
    if not unread:
        return
    if not DAG.exists():
        pytest.skip(f"{DAG.relative_to(REPO)} does not exist yet; it is to read {unread}")
    dag = "\n".join(p.read_text() for p in DAG.parent.glob("*.py"))  # the DAG and its operators
    unread = [n for n in unread if not re.search(rf"\b{n}\b", dag)]
    assert not unread, f"set in docker/ but read by no code: {unread}"


# --------------------------------------------------------------------------------------------
# Dockerfile: install steps, user, paths


def _pip_installs(commands: list[str]) -> list[str]:
    return [c for c in commands if re.search(r"\bpip install\b", c) and "--upgrade pip" not in c]


def _makefile_commands() -> list[str]:
    text = re.sub(r"\\\n\s*", " ", MAKEFILE.read_text())
    return [line.strip() for line in text.splitlines()]


def _flags(cmd: str) -> set[str]:
    relevant = {"-e", "--editable", "--no-deps", "--force-reinstall", "-U", "--upgrade"}
    return {t for t in re.findall(r"(?<!\S)(--?[A-Za-z][\w-]*)(?!\S)", cmd) if t in relevant}


def _extras(cmd: str) -> str | None:
    m = re.search(r"(?<![\w/])\.\[([\w,-]+)\]", cmd)
    return m.group(1) if m else None


def test_pip_steps_match_the_makefile(dockerfile):
    make = _pip_installs(_makefile_commands())
    image = _pip_installs(_run_commands(dockerfile))
    make_main = [c for c in make if _extras(c)]
    make_spark = [c for c in make if "pyspark==" in c]
    assert len(make_main) == 1 and len(make_spark) == 1, f"Makefile's pip steps changed: {make}"
    image_main = [i for i, c in enumerate(image) if _extras(c)]
    image_spark = [i for i, c in enumerate(image) if "pyspark==" in c]
    assert len(image_main) == 1, f"the Dockerfile must install the project once: {image}"
    assert len(image_spark) == 1, f"the Dockerfile must reinstall pyspark once: {image}"
    main, spark = image[image_main[0]], image[image_spark[0]]

    assert _extras(main) == _extras(make_main[0]), "not the Makefile's extras"
    assert _flags(main) == _flags(make_main[0]), "not the Makefile's install flags"
    assert _flags(spark) == _flags(make_spark[0]) >= {"--no-deps", "--force-reinstall"}
    # The same pyspark version as the main install resolved (or pyproject's pin, spelled out).
    version = spark.split("pyspark==", 1)[1]
    if version.startswith("$("):
        assert re.search(r"importlib\.metadata.*version\(['\"]pyspark['\"]\)", version), spark
    else:
        pins = re.findall(r'"pyspark\s*==\s*([^"]+)"', (REPO / "pyproject.toml").read_text())
        assert pins == [version.strip("'\"")], f"{spark}: not pyproject's pyspark pin {pins}"

    assert image_main[0] < image_spark[0], "pyspark must be reinstalled after the main install"
    for later in image[image_spark[0] + 1 :]:
        assert "--no-deps" in _flags(later) and "pyspark" not in later, (
            f"`{later}` runs after the pyspark reinstall and may bring pyspark-client back"
        )


def test_image_user_is_not_root(dockerfile):
    users = [args.split(":")[0] for word, args in dockerfile if word == "USER"]
    assert users, f"{DOCKERFILE} sets no USER: containers would run as root"
    assert users[-1] not in ("root", "0"), f"the final USER is {users[-1]}"
    created = " ".join(_run_commands(dockerfile))
    assert re.search(rf"useradd\b.*\s{re.escape(users[-1])}\b", created), (
        f"USER {users[-1]} is never created"
    )


def test_image_environment(dockerfile, image_env):
    venvs = [
        m.group(1) for c in _run_commands(dockerfile) if (m := re.search(r"-m venv\s+(\S+)", c))
    ]
    assert len(venvs) == 1, f"{DOCKERFILE} must create one venv, found {venvs}"
    venv = venvs[0]
    assert image_env.get("PATH", "").split(":")[0] == f"{venv}/bin", "venv bin must lead PATH"
    assert image_env.get("PYSPARK_PYTHON") == f"{venv}/bin/python"
    assert image_env.get("JAVA_HOME"), "JAVA_HOME is not set"
    java = re.findall(r"openjdk-(\d+)-jre", " ".join(_run_commands(dockerfile)))
    assert java and int(java[0]) >= MIN_JAVA, f"Spark needs Java {MIN_JAVA}+, found {java}"
    source = _copy_dest(dockerfile, ".")
    assert image_env.get("AIRFLOW__CORE__DAGS_FOLDER") == f"{source}/dags"
    if "RECSYS_JOBS_DIR" in image_env:
        assert image_env["RECSYS_JOBS_DIR"] == f"{source}/jobs"
    assert image_env.get("SPARK_HOME", "").startswith(f"{venv}/lib/"), "SPARK_HOME not in venv"


def test_compose_python_is_the_image_venv(compose, image_env):
    for name in RECSYS_SERVICES:
        env = _env(compose["services"][name])
        if "PYSPARK_PYTHON" in env:
            assert env["PYSPARK_PYTHON"] == image_env["PYSPARK_PYTHON"], name


# --------------------------------------------------------------------------------------------
# .dockerignore: what the build context keeps


def _ignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().lstrip("/").rstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def _ignored(path: str, rules) -> bool:
    """Docker's rule: a path is left out when a pattern matches it or one of its parents."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    ignored = False
    for negate, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not negate
    return ignored


def test_build_context_keeps_the_code_and_drops_local_state(dockerfile):
    rules = _ignore_rules()
    needed = ["pyproject.toml", "README.md", "dags/recsys_nightly.py", "jobs/prepare.py"]
    needed += [p.relative_to(REPO).as_posix() for p in (REPO / "recsys").rglob("*.py")]
    needed += [
        args.split()[-2]
        for word, args in dockerfile
        if word == "COPY" and not args.startswith("--") and args.split()[0] != "."
    ]
    dropped = [p for p in needed if "__pycache__" not in p and _ignored(p, rules)]
    assert not dropped, f".dockerignore leaves needed files out of the image: {dropped[:10]}"
    for local in (".venv/bin/python", "var/prepared/_LATEST", "data/ml/ratings.csv", "docker/.env"):
        assert _ignored(local, rules), f".dockerignore sends {local} to the Docker daemon"
