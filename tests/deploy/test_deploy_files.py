"""deploy/docker-compose.yml and deploy/k8s/*.yaml: they parse, probes and scrapes point at real
routes, every environment variable is one the service, gunicorn or the settings loader reads
(nested RECSYS_* names and the ConfigMap's serving_config.yaml go through the service's own
settings loader), the drain, grace periods and names line up across the files."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from recommender.cli import _parser
from recommender.config import load_serving_settings
from recommender.config.loader import CONFIG_DIR_VARIABLE, ENV_NAME_VARIABLE
from recommender.config.serving import ServingSettings
from recommender.errors import ConfigError
from service.deps import INGEST_TOKEN_ENV
from service.metrics import MULTIPROC_ENV
from service.routes import ROUTERS
from tests.fixtures.live_server import REPO

DEPLOY = REPO / "deploy"
GUNICORN_CONF = (REPO / "config" / "gunicorn.conf.py").read_text(encoding="utf-8")
GUNICORN_GRACE_EXTRA = 30  # config/gunicorn.conf.py: graceful_timeout = ceil(drain) + 30
MEASURED_WORKER_RSS_MIB = 304  # one worker on the demo shop after load (OPERATIONS_GUIDE.md)
# bytes per cache entry on the demo shop (DEPLOYMENT_OPTIMIZATION.md, "Cache memory bounds")
CACHE_ENTRY_BYTES = {"user_profile": 8_900, "item_similarity": 1_364, "results": 6_000}
ROUTES = {getattr(route, "path", "") for router in ROUTERS for route in router.routes}


def _k8s() -> dict[str, dict]:
    """Every manifest by ``Kind/name``."""
    found = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


def _container() -> dict:
    (container,) = _k8s()["Deployment/recsys"]["spec"]["template"]["spec"]["containers"]
    return container


def _configmap_settings(tmp_path: Path, environ: dict[str, str]) -> ServingSettings:
    text = _k8s()["ConfigMap/recsys-config"]["data"]["serving_config.yaml"]
    (tmp_path / "serving_config.yaml").write_text(text, encoding="utf-8")
    return load_serving_settings(tmp_path, environ)


def _flat_names() -> set[str]:
    """Variables read by name (not through the nested RECSYS_A__B loader)."""
    gunicorn = set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', GUNICORN_CONF))
    assert {"WEB_CONCURRENCY", "GUNICORN_BIND", "GUNICORN_GRACEFUL_TIMEOUT"} <= gunicorn
    return gunicorn | {
        CONFIG_DIR_VARIABLE,
        ENV_NAME_VARIABLE,
        INGEST_TOKEN_ENV,
        ServingSettings().admin.token_env,
        MULTIPROC_ENV,
    }


def _check_names(env: dict[str, str], tmp_path: Path) -> ServingSettings:
    flat = {name for name in env if "__" not in name}
    assert flat - _flat_names() == set()
    nested = {name: value for name, value in env.items() if "__" in name}
    assert all(name.startswith("RECSYS_") for name in nested)
    return _configmap_settings(tmp_path, nested)  # raises on any unknown or invalid key


def test_manifests_parse_and_refer_to_each_other():
    k8s = _k8s()
    assert set(k8s) == {
        "ConfigMap/recsys-config",
        "Deployment/recsys",
        "HorizontalPodAutoscaler/recsys",
        "PersistentVolumeClaim/recsys-shared",
        "PodDisruptionBudget/recsys",
        "Service/recsys",
        "Service/recsys-redis",
        "StatefulSet/recsys-redis",
    }
    deployment = k8s["Deployment/recsys"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert k8s["Service/recsys"]["spec"]["selector"].items() <= pod_labels.items()
    assert k8s["PodDisruptionBudget/recsys"]["spec"]["selector"]["matchLabels"] == pod_labels
    hpa = k8s["HorizontalPodAutoscaler/recsys"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "recsys",
    }
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["minReplicas"] >= 2
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "recsys-config"
    claim = volumes["shared"]["persistentVolumeClaim"]["claimName"]
    assert k8s[f"PersistentVolumeClaim/{claim}"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert k8s["Service/recsys"]["spec"]["ports"][0]["targetPort"] == "http"


def test_probes_and_scrapes_point_at_real_routes():
    container = _container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert "/health" in ROUTES and "/metrics" in ROUTES
    annotations = _k8s()["Deployment/recsys"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in ROUTES
    assert annotations["prometheus.io/port"] == str(ports["http"])
    recsys = _compose()["services"]["recsys"]
    assert "http://127.0.0.1:8000/health" in " ".join(recsys["healthcheck"]["test"])
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["job_name"] == "recsys"  # the rules select job="recsys"
    assert job["metrics_path"] in ROUTES
    assert job["dns_sd_configs"][0]["names"] == ["recsys"]  # the compose service name


def test_kubernetes_settings_are_real_and_use_redis(tmp_path):
    container = _container()
    env = {item["name"]: item.get("value", "secret") for item in container["env"]}
    assert env[CONFIG_DIR_VARIABLE] == "/etc/recsys"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["config"] == env[CONFIG_DIR_VARIABLE]
    settings = _check_names(env, tmp_path)
    assert settings.events.backend == "redis"
    assert settings.events.redis_url == "redis://recsys-redis:6379/0"  # Service/recsys-redis
    assert settings.paths.registry_dir.startswith(mounts["shared"] + "/")
    assert settings.paths.processed_dir.startswith(mounts["shared"] + "/")
    assert settings.admin.public_sample_ids is False


def test_prestop_drain_and_grace_period_match_the_drain_setting(tmp_path):
    settings = _configmap_settings(tmp_path, {})
    drain = settings.shutdown.drain_seconds
    container = _container()
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", f"{drain:g}"]
    grace = _k8s()["Deployment/recsys"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # preStop sleep, then the service's own drain, then gunicorn's graceful timeout
    assert grace > drain + math.ceil(drain) + GUNICORN_GRACE_EXTRA
    assert container["readinessProbe"]["periodSeconds"] < drain  # out of rotation in time


def test_resources_cover_the_measured_worker_memory(tmp_path):
    resources = _container()["resources"]
    env = {item["name"]: item.get("value") for item in _container()["env"]}
    assert env["WEB_CONCURRENCY"] == "1"  # the sizing is per worker
    cache = _configmap_settings(tmp_path, {}).cache
    full_caches_mib = (
        cache.user_profile.max_size * CACHE_ENTRY_BYTES["user_profile"]
        + cache.item_similarity.max_size * CACHE_ENTRY_BYTES["item_similarity"]
        + cache.results.max_size * CACHE_ENTRY_BYTES["results"]
    ) / 2**20
    request, limit = _mib(resources["requests"]["memory"]), _mib(resources["limits"]["memory"])
    assert MEASURED_WORKER_RSS_MIB < request < limit
    assert limit >= MEASURED_WORKER_RSS_MIB + full_caches_mib + 100  # + request buffers
    assert resources["requests"]["cpu"] == "1"  # the HPA's utilisation is relative to it
    compose_limit = _compose()["services"]["recsys"]["deploy"]["resources"]["limits"]["memory"]
    assert compose_limit == f"{limit}m"


def _mib(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match is not None, quantity
    return int(match[1]) * (1024 if match[2] == "Gi" else 1)


def test_compose_settings_are_real_and_the_build_command_parses(tmp_path):
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"redis", "build", "recsys", "lb", "prometheus"}
    recsys = services["recsys"]
    env = {k: str(v) for k, v in recsys["environment"].items()}
    settings = _check_names(env, tmp_path)
    assert settings.events.backend == "redis"
    assert settings.events.redis_url == "redis://redis:6379/0"
    assert recsys["deploy"]["replicas"] >= 2
    assert (
        "shared:/shared" in recsys["volumes"] and "shared:/shared" in services["build"]["volumes"]
    )
    drain = settings.shutdown.drain_seconds
    grace = int(recsys["stop_grace_period"].rstrip("s"))
    assert grace > drain + math.ceil(drain) + GUNICORN_GRACE_EXTRA
    command = services["build"]["command"]
    assert command[:3] == ["python", "-m", "recommender"]
    args = _parser(command[3]).parse_args(command[3:])
    assert (args.processed, args.registry) == (
        settings.paths.processed_dir,
        settings.paths.registry_dir,
    )
    assert services["redis"]["command"][1:] == ["--appendonly", "yes", "--appendfsync", "always"]
    mounted = {v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert {"./prometheus/prometheus.yml", "./prometheus/alerts.yml"} <= mounted
    for source in mounted | {v.split(":")[0] for v in services["lb"]["volumes"]}:
        assert (DEPLOY / source).is_file(), source


@pytest.mark.parametrize("name", ["RECSYS_EVENT__BACKEND", "RECSYS_EVENTS__BACKENDS"])
def test_a_misspelt_setting_is_caught(tmp_path, name):
    with pytest.raises(ConfigError, match="unknown"):
        _check_names({name: "redis"}, tmp_path)
