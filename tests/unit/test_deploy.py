"""Deployment files in deploy/: the Dockerfile, docker compose and the Kubernetes manifests.

No Docker engine or cluster is needed: the files are parsed and checked for what a deployment
relies on (every service present, started after the migrations, probed, non-root, no secrets).
"""

import base64
import binascii
import json
import re
import secrets
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SERVICES = ("registry", "selection", "casework", "appraisal", "finance", "notify")
PORT = 8000
YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in {".yml", ".yaml"})


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


# --- every YAML file ------------------------------------------------------------------------------


def test_the_deploy_files_exist() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    assert {
        "docker-compose.yml",
        "k8s/kustomization.yaml",
        "k8s/configmap.yaml",
        "k8s/migrate-job.yaml",
        "k8s/namespace.yaml",
        "k8s/secret.example.yaml",
    } <= names
    for name in ("Dockerfile", "Dockerfile.dockerignore", ".env.example", "README.md"):
        assert (DEPLOY / name).is_file(), name


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


# --- key material ---------------------------------------------------------------------------------

PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)
B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")


def key_material(text: str) -> list[str]:
    """Real-looking keys in `text`: PEM blocks with a base64 body, or long base64 strings."""
    found = []
    for match in PEM_BLOCK.finditer(text):
        body = re.sub(r"[\s|>\"']", "", match.group(2))
        if re.fullmatch(r"[A-Za-z0-9+/=]{40,}", body):
            found.append(match.group(0)[:60])
    for token in B64_TOKEN.findall(text):
        # Random base64 mixes cases and repeats few characters; identifiers and rulers do not.
        if token.isupper() or token.islower() or len(set(token)) < 20:
            continue
        try:
            raw = base64.urlsafe_b64decode(token.replace("+", "-").replace("/", "_") + "==")
        except (binascii.Error, ValueError):
            continue
        if len(raw) >= 24:
            found.append(token)
    return found


def test_key_material_detector_finds_real_keys() -> None:
    from shared.tokens import generate_dev_keypair

    private_pem, public_pem = generate_dev_keypair()
    field_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    assert key_material(f"FIELD_ENCRYPTION_KEY={field_key}")
    assert key_material(public_pem)
    assert key_material(private_pem)
    indented = "JWT_VERIFY_KEY: |\n" + "".join(f"    {line}\n" for line in public_pem.splitlines())
    assert key_material(indented)
    assert not key_material(
        "FIELD_HASH_KEY: REPLACE_ME\n-----BEGIN PUBLIC KEY-----\nREPLACE_ME\n-----END PUBLIC KEY-----"
    )


def test_key_material_detector_finds_event_keys_but_not_their_placeholders() -> None:
    from shared.events.signing import generate_keypair

    private, public = generate_keypair()
    assert key_material(f"EVENT_SIGNING_KEY={private}")
    # public keys are no secret, but real ones do not belong in the repository's manifests either
    assert key_material(json.dumps({"registry": public}))
    placeholders = {s: f"REPLACE_WITH_{s.upper()}_PUBLIC_KEY" for s in SERVICES}
    assert not key_material(yaml.safe_dump({"EVENT_VERIFY_KEYS": json.dumps(placeholders)}))
    assert not key_material("-----BEGIN CERTIFICATE-----\nREPLACE_ME\n-----END CERTIFICATE-----")


@pytest.mark.parametrize(
    "path",
    # deploy/.env is the operator's real (git-ignored) secrets file: not part of the repository.
    sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p != DEPLOY / ".env"),
    ids=lambda p: p.relative_to(DEPLOY).as_posix(),
)
def test_no_key_material_in_deploy(path: Path) -> None:
    assert key_material(path.read_text(encoding="utf-8")) == []


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "dangling line continuation"
    result = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def instructions(name: str) -> list[str]:
    return [args for instruction, args in dockerfile_instructions() if instruction == name]


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    args = dict(a.split("=", 1) for a in instructions("ARG") if "=" in a)
    stages = instructions("FROM")
    assert len(stages) >= 2
    for stage in stages:
        image = stage.split()[0]
        image = args.get(image.strip("${}"), image) if image.startswith("$") else image
        assert image.startswith("python:3.11-slim"), stage
    assert any("--from=" in c for c in instructions("COPY")), "the runtime stage copies the venv"


def test_dockerfile_installs_the_lock_with_hashes() -> None:
    installs = [r for r in instructions("RUN") if "pip install" in r]
    assert installs
    assert all("--require-hashes" in r for r in installs), installs
    lock_default = dict(a.split("=", 1) for a in instructions("ARG") if "=" in a).get("REQUIREMENTS")
    # the image installs the runtime lock (no test tools, no embedded PostgreSQL or broker)
    assert lock_default == "requirements-runtime.lock"
    assert (ROOT / lock_default).is_file()
    assert "pytest==" not in (ROOT / lock_default).read_text()
    assert any("-r " in r for r in installs)


def test_dockerfile_copies_only_the_application_code() -> None:
    for copy in instructions("COPY"):
        if "--from=" in copy:
            continue
        sources = [s for s in shlex.split(copy) if not s.startswith("--")][:-1]
        for source in sources:
            top = source.strip("./").split("/")[0]
            assert top in {"shared", "services"} or source.startswith(("requirements", "${REQUIREMENTS")), (
                f"COPY of {source!r}: only shared/, services/ and the lock belong in the image"
            )
    assert (ROOT / "shared").is_dir() and (ROOT / "requirements.lock").is_file()


def test_dockerfile_runtime_settings() -> None:
    users = instructions("USER")
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    env = " ".join(instructions("ENV"))
    assert re.search(r"\bPYTHONPATH=/app\b", env)
    assert re.search(rf"\bPORT={PORT}\b", env)
    assert str(PORT) in instructions("EXPOSE")[-1].split()
    healthcheck = instructions("HEALTHCHECK")[-1]
    assert "/healthz" in healthcheck and "urllib" in healthcheck and "curl" not in healthcheck
    assert json.loads(instructions("ENTRYPOINT")[-1]) == ["python", "-m"]
    assert json.loads(instructions("CMD")[-1]) == ["shared.serve", "registry"]


def test_dockerignore_keeps_tests_data_and_keys_out() -> None:
    patterns = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "allow-list: ignore everything, then re-include"
    included = [p[1:] for p in patterns if p.startswith("!")]
    assert any(p.startswith("shared") for p in included)
    assert any(p.startswith("services") for p in included)
    assert any(p.startswith("requirements") for p in included)
    for excluded in ("tests", "bench", ".data", ".venv", "docs", "deploy"):
        assert not any(p.startswith(excluded) for p in included), excluded
    assert "**/.env" in patterns


# --- docker compose -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (doc,) = load_all(DEPLOY / "docker-compose.yml")
    return doc


def test_compose_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "kafka-format", "kafka", "kafka-setup", "migrate", *SERVICES,
                                        "portal"}


def test_compose_portal_has_no_database_no_service_secrets_and_its_own_session_key(compose: dict[str, Any]) -> None:
    """Issue 15: the portal is one more command of the image, with only its own settings (never deploy/.env)."""
    spec = compose["services"]["portal"]
    assert spec["command"] == ["shared.serve", "portal"]
    assert spec["image"] == compose["services"]["migrate"]["image"]
    assert "env_file" not in spec and "volumes" not in spec  # no .env whole, no Kafka CA
    env = spec["environment"]
    assert env["ENVIRONMENT"] == "production"
    assert not {"DATABASE_URL", "SERVICE_TOKEN", "FIELD_ENCRYPTION_KEY", "FIELD_HASH_KEY", "EVENT_SIGNING_KEY",
                "KAFKA_BOOTSTRAP_SERVERS", "DEV_KEY_FILE"} & set(env)
    assert env["PORTAL_SESSION_KEY"].startswith("${PORTAL_SESSION_KEY:?")
    assert set(json.loads(env["SERVICE_URLS"])) == set(SERVICES)
    assert "/readyz" in " ".join(spec["healthcheck"]["test"])
    assert spec["ports"] == ["8006:8000"]


def test_compose_postgres(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    name, _, tag = postgres["image"].partition(":")
    assert name == "postgres" and int(tag.split(".")[0]) >= 14
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "${POSTGRES_PASSWORD:?" in postgres["environment"]["POSTGRES_PASSWORD"]


def test_compose_kafka_is_kraft(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:3.9")
    env = kafka["environment"]
    assert {"broker", "controller"} <= set(env["KAFKA_PROCESS_ROLES"].split(","))
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@localhost:9093"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "SASL_SSL://kafka:9092"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "ZOOKEEPER" not in " ".join(env)
    assert "kafka-broker-api-versions" in " ".join(kafka["healthcheck"]["test"])


def test_compose_migrate_is_one_shot(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["shared.db.migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    assert migrate["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service(compose: dict[str, Any], service: str) -> None:
    spec = compose["services"][service]
    assert spec["command"] == ["shared.serve", service]
    assert spec["image"] == compose["services"]["migrate"]["image"], "one image for everything"
    assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert spec["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(spec["healthcheck"]["test"])
    assert not spec["healthcheck"].get("disable")
    assert ".env" in spec["env_file"]
    env = spec["environment"]
    assert env["ENVIRONMENT"] == "production"
    assert env["KAFKA_IDEMPOTENT_PRODUCER"] == "true"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert not {"FIELD_ENCRYPTION_KEY", "FIELD_HASH_KEY", "JWT_VERIFY_KEY"} & set(env), "secrets: env_file"
    assert [p.rsplit(":", 1)[1] for p in spec["ports"]] == [str(PORT)]


def test_compose_host_ports_are_8001_to_8005_and_notify_8007(compose: dict[str, Any]) -> None:
    host_ports = [compose["services"][s]["ports"][0].split(":")[-2] for s in SERVICES]
    assert host_ports == ["8001", "8002", "8003", "8004", "8005", "8007"]  # the portal has 8006


def test_compose_has_no_default_for_secrets() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
    assert "POSTGRES_PASSWORD:-" not in text and "POSTGRES_PASSWORD=" not in text
    assert "FIELD_ENCRYPTION_KEY" not in text and "FIELD_HASH_KEY" not in text


def test_env_example_lists_the_secrets_as_placeholders() -> None:
    text = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    for name in ("POSTGRES_PASSWORD", "FIELD_ENCRYPTION_KEY", "FIELD_HASH_KEY", "JWT_VERIFY_KEY"):
        match = re.search(rf"^{name}=(.*)$", text, re.M)
        assert match, name
        assert "CHANGE_ME" in match.group(1) or "BEGIN PUBLIC KEY" in match.group(1), name
    assert "secrets.token_bytes(32)" in text
    assert "python -m shared.tokens --key-file .data/keys.json --init" in text


def test_compose_kafka_is_secured(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    listeners = dict(item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert listeners == {"SASL_SSL": "SASL_SSL", "CONTROLLER": "PLAINTEXT"}
    for listener in env["KAFKA_LISTENERS"].split(","):
        name, _, address = listener.partition("://")
        assert listeners[name] != "PLAINTEXT" or address.startswith("localhost:"), (
            f"PLAINTEXT client listener {listener}")
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert "User:admin" in env["KAFKA_SUPER_USERS"].split(";")
    assert "${KAFKA_KEYSTORE_PASSWORD:?" in env["KAFKA_SSL_KEYSTORE_PASSWORD"]
    assert any(v.startswith("${KAFKA_KEYSTORE_FILE:?") for v in kafka["volumes"]), "keystore from a path in .env"
    assert "--add-scram" in " ".join(compose["services"]["kafka-format"]["command"])


def test_compose_kafka_setup_runs_the_acl_script(compose: dict[str, Any]) -> None:
    setup = compose["services"]["kafka-setup"]
    assert setup["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert setup["restart"] == "no"
    assert "./kafka/acls.sh:/opt/setup/acls.sh:ro" in setup["volumes"]
    assert "sh /opt/setup/acls.sh" in " ".join(setup["command"])
    assert (DEPLOY / "kafka" / "acls.sh").is_file()
    for service in SERVICES:
        variable = f"{service.upper()}_KAFKA_SASL_PASSWORD"
        assert setup["environment"][variable].startswith(f"${{{variable}:?")


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_uses_sasl_ssl(compose: dict[str, Any], service: str) -> None:
    spec = compose["services"][service]
    env = spec["environment"]
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_USERNAME"] == service
    assert env["KAFKA_SASL_PASSWORD"].startswith(f"${{{service.upper()}_KAFKA_SASL_PASSWORD:?")
    assert env["EVENT_SIGNING_KEY"].startswith(f"${{{service.upper()}_EVENT_SIGNING_KEY:?")
    assert any(v.endswith(f":{env['KAFKA_SSL_CAFILE']}:ro") for v in spec["volumes"])
    assert spec["depends_on"]["kafka-setup"]["condition"] == "service_completed_successfully"


# Compose file schema: no compose-spec JSON schema is installable offline here (docker-compose 1.29.2
# ships one but pins PyYAML<6), so the compose file keeps the structural checks above.


# --- Kubernetes: offline schema validation (kubernetes-validate, strict) ----------------------

K8S_VERSION = "1.30.0"
K8S_DOCS = [
    (path, i, doc)
    for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
    for i, doc in enumerate(load_all(path))
]


@pytest.mark.parametrize(("path", "index", "doc"), K8S_DOCS,
                         ids=[f"{p.name}#{i}:{d.get('kind')}/{d.get('metadata', {}).get('name')}"
                              for p, i, d in K8S_DOCS])
def test_k8s_manifest_matches_the_schema(path: Path, index: int, doc: dict[str, Any]) -> None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{path.name} document {index}: {exc.message} at {'/'.join(map(str, exc.path))}")


# --- Kubernetes -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    (doc,) = load_all(K8S / "kustomization.yaml")
    return doc


@pytest.fixture(scope="module")
def manifests(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    docs = []
    for resource in kustomization["resources"]:
        path = K8S / resource
        assert path.is_file(), resource
        docs.extend(load_all(path))
    return docs


def find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in manifests if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def the_container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec["containers"]
    return container


def named_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (match,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return match


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# Per-service credentials: env name in the pod -> (Secret, key suffix); the key is <SERVICE>_<suffix>.
PER_SERVICE_ENV = {
    "DATABASE_URL": ("supervision-database", "DATABASE_URL"),
    "KAFKA_SASL_PASSWORD": ("supervision-kafka", "KAFKA_SASL_PASSWORD"),
    "EVENT_SIGNING_KEY": ("supervision-event-signing", "EVENT_SIGNING_KEY"),
}
PER_SERVICE_SECRETS = {secret: suffix for secret, suffix in PER_SERVICE_ENV.values()}
KAFKA_CA_SECRET = "supervision-kafka-ca"


def secret_key_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """env name -> (Secret, key) of every secretKeyRef of the container."""
    refs = {}
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            refs[env["name"]] = (ref["name"], ref["key"])
    return refs


def whole_secrets(container: dict[str, Any]) -> list[str]:
    return [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]


def example_secrets() -> dict[str, dict[str, str]]:
    return {doc["metadata"]["name"]: doc["stringData"] for doc in load_all(K8S / "secret.example.yaml")}


def workloads(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in manifests if d["kind"] in {"Deployment", "Job"}]


def test_kustomization_lists_everything_but_the_example_secret(kustomization: dict[str, Any]) -> None:
    resources = set(kustomization["resources"])
    assert "secret.example.yaml" not in resources
    assert {"namespace.yaml", "configmap.yaml", "migrate-job.yaml"} <= resources
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert on_disk <= resources, f"not in the kustomization: {on_disk - resources}"
    assert kustomization["namespace"] == "people-supervisors"
    assert "secretGenerator" not in kustomization


def test_no_secret_with_key_material_in_the_kustomization(manifests: list[dict[str, Any]]) -> None:
    for doc in manifests:
        if doc["kind"] == "Secret":
            values = {**doc.get("stringData", {}), **doc.get("data", {})}
            assert not key_material(yaml.safe_dump(values)), doc["metadata"]["name"]
            assert all("REPLACE_ME" in str(v) for v in values.values()), doc["metadata"]["name"]


def test_example_secrets_hold_placeholders_only() -> None:
    docs = load_all(K8S / "secret.example.yaml")
    keys: set[str] = set()
    for doc in docs:
        assert doc["kind"] == "Secret"
        assert "data" not in doc
        for key, value in doc["stringData"].items():
            assert "REPLACE_ME" in value, key
            assert not key_material(value), key
            keys.add(key)
    assert {"FIELD_ENCRYPTION_KEY", "FIELD_HASH_KEY", "JWT_VERIFY_KEY", "MIGRATE_DATABASE_URL", "ca.crt"} <= keys
    for suffix in PER_SERVICE_SECRETS.values():
        assert {f"{s.upper()}_{suffix}" for s in SERVICES} <= keys, suffix


def test_configmap(manifests: list[dict[str, Any]]) -> None:
    data = find(manifests, "ConfigMap", "supervision-config")["data"]
    assert data["ENVIRONMENT"] == "production"
    assert data["KAFKA_IDEMPOTENT_PRODUCER"] == "true"
    assert data["LOG_JSON"] == "true"
    assert int(data["KAFKA_TOPIC_REPLICATION"]) >= 3
    assert int(data["KAFKA_TOPIC_PARTITIONS"]) >= 1
    assert data["KAFKA_BOOTSTRAP_SERVERS"]
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"
    secret_names = {"DATABASE_URL", "FIELD_ENCRYPTION_KEY", "FIELD_HASH_KEY", "JWT_VERIFY_KEY",
                    "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "EVENT_SIGNING_KEY"}
    assert not secret_names & set(data)
    assert not [k for k in data if k.endswith(("_KAFKA_SASL_PASSWORD", "_EVENT_SIGNING_KEY"))]


def test_configmap_uses_the_secured_kafka(manifests: list[dict[str, Any]]) -> None:
    data = find(manifests, "ConfigMap", "supervision-config")["data"]
    assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["KAFKA_SSL_CAFILE"].startswith("/")
    # every producer's public key, the same JSON for all (placeholders here: see the detector test)
    verify_keys = json.loads(data["EVENT_VERIFY_KEYS"])
    assert set(verify_keys) == set(SERVICES)
    assert all(isinstance(v, str) and v for v in verify_keys.values())
    assert not key_material(data["EVENT_VERIFY_KEYS"])


def check_hardened(pod_spec: dict[str, Any], container: dict[str, Any]) -> None:
    pod_ctx = pod_spec.get("securityContext", {})
    ctx = container["securityContext"]
    assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert pod_ctx.get("runAsUser", 0) != 0
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == tmp["name"]]
    assert "emptyDir" in volume
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def check_config_envfrom(container: dict[str, Any], manifests: list[dict[str, Any]]) -> None:
    config_maps = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    assert config_maps, "envFrom the ConfigMap"
    for name in config_maps:
        find(manifests, "ConfigMap", name)


def database_url_key(container: dict[str, Any]) -> tuple[str, str]:
    (env,) = [e for e in container["env"] if e["name"] == "DATABASE_URL"]
    ref = env["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_deployment(manifests: list[dict[str, Any]], service: str) -> None:
    deployment = find(manifests, "Deployment", service)
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    template = spec["template"]
    labels = template["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == service
    assert labels["app.kubernetes.io/part-of"] == "people-supervisors"
    assert selects(spec["selector"]["matchLabels"], labels)
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"

    pod_spec = template["spec"]
    container = the_container(pod_spec)
    command = [*container.get("command", []), *container.get("args", [])]
    assert command[-2:] == ["shared.serve", service]
    assert [p["containerPort"] for p in container["ports"]] == [PORT]
    for probe, path in (
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ):
        http = container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert named_port(container, http["port"]) == PORT, probe
    check_hardened(pod_spec, container)
    check_config_envfrom(container, manifests)

    # Its own database credentials only: DATABASE_URL from its key, the database Secret never whole.
    secret, key = database_url_key(container)
    assert key == f"{service.upper()}_DATABASE_URL"
    whole = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
    assert whole and secret not in whole


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_deployment_uses_its_own_kafka_user_and_signing_key(
    manifests: list[dict[str, Any]], service: str
) -> None:
    pod_spec = find(manifests, "Deployment", service)["spec"]["template"]["spec"]
    container = the_container(pod_spec)
    (username,) = [e for e in container["env"] if e["name"] == "KAFKA_SASL_USERNAME"]
    assert username == {"name": "KAFKA_SASL_USERNAME", "value": service}, "the SCRAM user = the service name"
    refs = secret_key_refs(container)
    for env_name, (secret, suffix) in PER_SERVICE_ENV.items():
        assert refs[env_name] == (secret, f"{service.upper()}_{suffix}"), env_name
        assert secret not in whole_secrets(container), f"{secret} must not be read whole"

    # the brokers' CA: the Secret's ca.crt, read-only, at KAFKA_SSL_CAFILE
    cafile = find(manifests, "ConfigMap", "supervision-config")["data"]["KAFKA_SSL_CAFILE"]
    (volume,) = [v for v in pod_spec["volumes"] if v.get("secret", {}).get("secretName") == KAFKA_CA_SECRET]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount.get("readOnly") is True
    items = {i["key"]: i["path"] for i in volume["secret"].get("items", [])}
    assert cafile == f"{mount['mountPath'].rstrip('/')}/{items.get('ca.crt', 'ca.crt')}"
    assert not {"KAFKA_SSL_CAFILE", "KAFKA_SECURITY_PROTOCOL"} & {e["name"] for e in container["env"]}, (
        "the ConfigMap's value, not overridden")


def test_k8s_no_pod_gets_another_services_credentials(manifests: list[dict[str, Any]]) -> None:
    per_service = set(PER_SERVICE_SECRETS)
    seen: dict[tuple[str, str], str] = {}
    for doc in workloads(manifests):
        name = doc["metadata"]["name"]
        container = the_container(doc["spec"]["template"]["spec"])
        assert not per_service & set(whole_secrets(container)), f"{name} reads a per-service Secret whole"
        for secret, key in secret_key_refs(container).values():
            if secret in per_service:
                owner = key.split("_", 1)[0].lower()
                assert owner == name or (doc["kind"] == "Job" and owner == "migrate"), f"{name} gets {key}"
                assert (secret, key) not in seen, f"{key} in {seen.get((secret, key))} and {name}"
                seen[(secret, key)] = name
    for secret, suffix in PER_SERVICE_SECRETS.items():
        assert {(secret, f"{s.upper()}_{suffix}") for s in SERVICES} <= set(seen), secret
    # what every pod reads whole holds nothing of one service
    example = example_secrets()
    for doc in workloads(manifests):
        for secret in whole_secrets(the_container(doc["spec"]["template"]["spec"])):
            shared = set(example[secret])
            assert not {k for k in shared for suffix in PER_SERVICE_SECRETS.values() if k.endswith(suffix)}, secret
            assert not {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "EVENT_SIGNING_KEY"} & shared, secret


def test_k8s_portal_has_only_its_own_secrets_and_no_database_broker_or_service_token(
        manifests: list[dict[str, Any]]) -> None:
    """Issue 15: the portal (a backend-for-frontend) reads the services as the signed-in person; its pod gets its
    session key and OIDC client secret, nothing of the services (no database, Kafka user, signing or field key)."""
    deployment = find(manifests, "Deployment", "portal")
    pod = deployment["spec"]["template"]["spec"]
    container = the_container(pod)
    assert container["args"] == ["shared.serve", "portal"]
    check_hardened(pod, container)
    check_config_envfrom(container, manifests)
    assert whole_secrets(container) == []  # not even supervision-secrets (field keys, JWT key)
    assert set(secret_key_refs(container).values()) == {("supervision-portal", "PORTAL_SESSION_KEY"),
                                                         ("supervision-portal", "OIDC_CLIENT_SECRET")}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert not {"DATABASE_URL", "KAFKA_SASL_USERNAME", "EVENT_SIGNING_KEY", "SERVICE_TOKEN"} & set(env)
    assert env["COOKIE_SECURE"] == "true" and env["OIDC_REDIRECT_URI"].endswith("/auth/callback")
    assert {"PORTAL_SESSION_KEY", "OIDC_CLIENT_SECRET"} <= set(example_secrets()["supervision-portal"])
    assert deployment["spec"]["replicas"] >= 2
    service = find(manifests, "Service", "portal")
    assert selects(service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
    assert find(manifests, "PodDisruptionBudget", "portal")["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_service_selects_its_pods(manifests: list[dict[str, Any]], service: str) -> None:
    svc = find(manifests, "Service", service)
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    selector = svc["spec"]["selector"]
    chosen = [
        name
        for name, d in deployments.items()
        if selects(selector, d["spec"]["template"]["metadata"]["labels"])
    ]
    assert chosen == [service]
    container = the_container(deployments[service]["spec"]["template"]["spec"])
    (port,) = svc["spec"]["ports"]
    assert port["port"] == PORT
    assert named_port(container, port.get("targetPort", port["port"])) == PORT


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_disruption_budget(manifests: list[dict[str, Any]], service: str) -> None:
    pdb = find(manifests, "PodDisruptionBudget", service)
    deployment = find(manifests, "Deployment", service)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_k8s_has_exactly_the_services_and_the_portal(manifests: list[dict[str, Any]]) -> None:
    for kind in ("Deployment", "Service"):
        assert sorted(d["metadata"]["name"] for d in manifests if d["kind"] == kind) == sorted([*SERVICES, "portal"])


def test_k8s_migrate_job(manifests: list[dict[str, Any]]) -> None:
    (job,) = [d for d in manifests if d["kind"] == "Job"]
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] in {"Never", "OnFailure"}
    container = the_container(pod_spec)
    assert [*container.get("command", []), *container.get("args", [])][-1] == "shared.db.migrate"
    assert database_url_key(container) == ("supervision-database", "MIGRATE_DATABASE_URL")
    # the migrations talk to PostgreSQL only (shared/db/migrate.py): nothing of Kafka
    assert set(secret_key_refs(container)) == {"DATABASE_URL"}
    assert not [v for v in pod_spec["volumes"] if v.get("secret", {}).get("secretName") == KAFKA_CA_SECRET]
    assert "kafka" not in (ROOT / "shared" / "db" / "migrate.py").read_text(encoding="utf-8").lower()
    images = {
        the_container(d["spec"]["template"]["spec"])["image"] for d in manifests if d["kind"] == "Deployment"
    }
    assert images == {container["image"]}, "the Job runs the services' image"
    check_hardened(pod_spec, container)
    check_config_envfrom(container, manifests)


def test_k8s_secret_keys_are_all_in_the_example(manifests: list[dict[str, Any]]) -> None:
    example = {
        (doc["metadata"]["name"], key)
        for doc in load_all(K8S / "secret.example.yaml")
        for key in doc["stringData"]
    }
    used = set()
    for doc in workloads(manifests):
        pod_spec = doc["spec"]["template"]["spec"]
        container = the_container(pod_spec)
        used.update(secret_key_refs(container).values())
        for name in whole_secrets(container):
            assert any(name == secret for secret, _ in example), name
        for volume in pod_spec.get("volumes", []):
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                keys = [i["key"] for i in volume["secret"].get("items", [])]
                assert keys, f"volume {volume['name']}: project only the keys it needs (items)"
                used.update((name, key) for key in keys)
    assert used <= example, used - example


def test_readme_documents_the_kafka_users_for_kubernetes() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    section = text.split("## Kubernetes", 1)[1].split("\n## ", 1)[0]
    assert "deploy/kafka/acls.sh" in section and "KafkaUser" in section
    assert "KAFKA_TOPIC_REPLICATION" in section, "acls.sh creates the topics: with the cluster's replication"
    for secret in example_secrets():
        assert f"`{secret}`" in section, secret


def test_postgres_roles_cover_every_service() -> None:
    roles = (DEPLOY / "postgres" / "00-roles.sql").read_text(encoding="utf-8")
    schemas = (DEPLOY / "postgres" / "10-schemas.sql").read_text(encoding="utf-8")
    for service in SERVICES:
        assert f"'{service}'" in roles and f":'{service}_password'" in roles, service
        assert f"'{service}'" in schemas, service
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC" in roles
    assert "GRANT USAGE ON SCHEMA" in schemas and "ALTER DEFAULT PRIVILEGES" in schemas
    assert "CREATE ON SCHEMA" not in schemas, "service roles must not run DDL"
