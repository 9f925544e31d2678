"""docker/ and deploy/k8s/ checked without a Docker engine or a cluster (neither runs on these
machines): the Compose file against the Compose specification's JSON schema (check-jsonschema's
vendored copy), the Dockerfile with hadolint, the image's commands against the CLI and against
what `make demo` runs; the Kubernetes manifests rendered by kustomize (`make kustomize`) and
validated against the Kubernetes API's schemas (kubernetes-validate, offline); a broken copy of
each fails its check. (The Prometheus config, the alerting rules and the dashboard's queries:
tests/integration/test_monitoring.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from stockapp.cli import build_parser
from tests.helpers import BIN, REPO

COMPOSE = REPO / "docker" / "compose.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
K8S = REPO / "deploy" / "k8s"
KUSTOMIZE = sorted((REPO / ".stack" / "bin").glob("kustomize-*"))


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_compose_file_follows_the_compose_specification(tmp_path):
    checked = check_compose(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        COMPOSE.read_text().replace("condition: service_healthy", "condition: when_ready", 1)
    )
    assert check_compose(broken).returncode != 0


def test_the_dockerfile_passes_hadolint(tmp_path):
    linted = hadolint(DOCKERFILE)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root\nRUN cd /tmp"))
    assert hadolint(broken).returncode != 0


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_image_runs_the_commands_the_local_stack_runs():
    """Every stockapp service's command is a command of the CLI with valid options, and the
    worker, the schema job and the simulator are the ones `make demo` starts."""
    services = _compose()["services"]
    ours = {name: s for name, s in services.items() if s.get("image") == "stockapp:local"}
    assert set(ours) == {"migrate", "worker", "producer", "producer-alphavantage"}
    parser = build_parser()
    for name, service in ours.items():
        command = service["command"]
        assert command[0] == "stockapp", name
        if command[1] != "worker":  # the worker's options are Faust's
            parser.parse_args(command[1:])  # exits (SystemExit) on an unknown option or choice
    assert ours["worker"]["command"] == ["stockapp", "worker"]
    assert ours["migrate"]["command"] == ["stockapp", "db", "migrate"]
    # stockapp/devstack/demo.py start_simulator: produce --source simulator --rate 20.0
    demo = parser.parse_args(["produce", "--source", "simulator", "--rate", "20.0"])
    compose = parser.parse_args(ours["producer"]["command"][1:])
    assert vars(compose) == vars(demo)
    dockerfile = DOCKERFILE.read_text()
    assert 'CMD ["stockapp", "worker"]' in dockerfile


def test_workers_scale_without_sharing_state_or_a_host_port():
    worker = _compose()["services"]["worker"]
    # Each container keeps its RocksDB state in its own volume (the image's VOLUME /data): a
    # named volume shared by scaled workers would have them open the same files.
    assert not worker.get("volumes")
    assert worker["ports"] == ["127.0.0.1:6066-6075:6066"]
    dockerfile = DOCKERFILE.read_text()
    assert "STOCKAPP_WEB_ADVERTISE=auto" in dockerfile and "VOLUME /data" in dockerfile
    # Every published port binds to loopback.
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def kustomize(path: Path) -> str:
    if not KUSTOMIZE:
        pytest.fail("no .stack/bin/kustomize-*: run `make kustomize` (make test does)")
    built = subprocess.run(
        [str(KUSTOMIZE[-1]), "build", str(path)], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    return built.stdout


def validate(manifests: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(manifests)
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("variant", ["base", "overlays/autoscale", "overlays/secure"])
def test_the_kubernetes_manifests_render_and_validate(variant, tmp_path):
    manifests = kustomize(K8S / variant)
    checked = validate(manifests, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(manifests)}
    want = {"ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget"}
    assert kinds == (want | {"HorizontalPodAutoscaler"} if "autoscale" in variant else want)
    # A broken copy fails: a field the API does not have.
    broken = manifests.replace("terminationGracePeriodSeconds:", "terminationGracePeriod:")
    assert validate(broken, tmp_path).returncode != 0


def test_the_workers_manifest_matches_the_worker(tmp_path):
    """What the manifests assume of the worker is what it does: its command, port, probes,
    state directory, advertised name and settings."""
    from stockapp.settings import Settings

    docs = list(yaml.safe_load_all(kustomize(K8S / "overlays/autoscale")))
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["command"] == ["stockapp", "worker"]
    assert container["ports"][0]["containerPort"] == int(env["STOCKAPP_WEB_PORT"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert env["STOCKAPP_WEB_ADVERTISE"].endswith(
        f".{sts['spec']['serviceName']}.$(POD_NAMESPACE).svc"
    )
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert env["STOCKAPP_DATA_DIR"] in mounts
    # Every STOCKAPP_ variable the manifests set is a setting the worker reads.
    known = {f"STOCKAPP_{name.upper()}" for name in Settings.model_fields}
    names = {n for n in list(env) + list(config["data"]) if n.startswith("STOCKAPP_")}
    assert names <= known, names - known
    # The autoscaler's ceiling is the partition count: a worker more would get no partition.
    assert hpa["spec"]["maxReplicas"] == int(config["data"]["STOCKAPP_QUOTES_PARTITIONS"])
    assert hpa["spec"]["scaleTargetRef"]["name"] == sts["metadata"]["name"]


def test_the_secure_overlay_reads_its_secrets_from_mounted_files():
    """Every file setting of the overlay for clusters with SASL/TLS names a file under a
    mounted Secret, with the key that Secret projects; every variable is a setting."""
    from stockapp.settings import Settings

    docs = list(yaml.safe_load_all(kustomize(K8S / "overlays/secure")))
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    files: set[str] = set()
    for volume in pod["volumes"]:
        secret = volume.get("secret")
        if secret and volume["name"] in mounts:
            # A Secret without items projects all its keys: the TLS one holds ca.pem.
            keys = [item["path"] for item in secret.get("items", [])] or ["ca.pem"]
            files |= {f"{mounts[volume['name']]}/{key}" for key in keys}
    data = config["data"]
    known = {f"STOCKAPP_{name.upper()}" for name in Settings.model_fields}
    assert set(data) <= known, set(data) - known
    assert data["STOCKAPP_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    for name in ("STOCKAPP_KAFKA_SASL_PASSWORD_FILE", "STOCKAPP_KAFKA_SSL_CAFILE"):
        assert data[name] in files, (name, data[name], files)
    assert data["STOCKAPP_CASSANDRA_SSL_CAFILE"] in files


def test_exposed_workers_have_a_token_or_say_they_are_open_and_sign_what_they_forward():
    """A worker bound to 0.0.0.0 refuses to start without a token unless STOCKAPP_ALLOW_OPEN
    says so: the image leaves the choice to whoever runs it (explicitly false), Compose says
    open (its ports are published on 127.0.0.1 only), Kubernetes mounts the tokens. Scaled
    workers sign what they forward: Compose requires STOCKAPP_WORKER_SECRET, Kubernetes mounts
    it."""
    dockerfile = DOCKERFILE.read_text()
    assert "STOCKAPP_WEB_HOST=0.0.0.0" in dockerfile
    assert "STOCKAPP_ALLOW_OPEN=false" in dockerfile
    assert "STOCKAPP_API_TOKEN=" not in dockerfile  # a token baked in would be everyone's
    env = _compose()["services"]["worker"]["environment"]
    assert env["STOCKAPP_ALLOW_OPEN"] == "true" or env.get("STOCKAPP_API_TOKEN")
    assert env["STOCKAPP_WORKER_SECRET"].startswith("${STOCKAPP_WORKER_SECRET:?")
    assert env["STOCKAPP_KAFKA_BOOTSTRAP"] == "kafka:29092"  # the shared settings kept

    for variant in ("base", "overlays/secure"):
        docs = list(yaml.safe_load_all(kustomize(K8S / variant)))
        (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
        pod = sts["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        values = {e["name"]: e.get("value") for e in container["env"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        (secrets,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
        files = {f"{mounts['secrets']}/{item['path']}" for item in secrets["secret"]["items"]}
        for name in (
            "STOCKAPP_API_TOKEN_FILE",
            "STOCKAPP_ADMIN_TOKEN_FILE",
            "STOCKAPP_WORKER_SECRET_FILE",
        ):
            assert values[name] in files, (variant, name, files)
