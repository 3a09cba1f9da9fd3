# SPDX-License-Identifier: Apache-2.0
"""Policy checks of the rendered Kubernetes manifests and of the Dockerfile, offline.

    python deploy/policy_check.py --repo . --dockerfile deploy/docker/Dockerfile \
        OVERLAY=CHAIN_ID=RENDERED.yaml [...]

kubernetes-validate checks that the manifests are well-formed Kubernetes objects; this checks
what the schemas cannot: hardening, resources, image tags, that no Secret is inlined, that
each worker pod picks its own key, and that the settings the manifests pass (PEDALS_* names,
provider.toml keys, the deployment file's fields) are ones the `pedals` binary reads, as
read from its Rust sources, so that a renamed flag shows up here rather than in a crash loop.
Needs PyYAML (installed with kubernetes-validate). Prints one line per failure and a summary
line "policy: N passed, M failed"; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
SECRET_NAMES = re.compile(r"PASSWORD|PASSPHRASE|SECRET|PRIVATE_KEY|MNEMONIC|TOKEN", re.I)
# Settings the pod spec owns (paths and ports); provider.toml must not repeat them, since the
# environment would silently win.
LAYOUT_KEYS = {"deployment", "data_dir", "keystore", "password_file", "metrics_addr", "listen"}


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []
        self.notes: dict[str, None] = {}  # ordered, without repeats

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
        return ok


# ----------------------------------------------------------------------------------------------
# What the binary reads, from its sources.


def source_env_names(repo: Path) -> set[str]:
    names: set[str] = set()
    for path in (repo / "market-cli" / "src").rglob("*.rs"):
        names.update(re.findall(r'env\s*=\s*"(PEDALS_[A-Z0-9_]+)"', path.read_text()))
    if not names:
        sys.exit("error: found no `env = \"PEDALS_…\"` in market-cli/src: update policy_check.py")
    return names


def struct_fields(path: Path, struct: str) -> list[str]:
    text = path.read_text()
    m = re.search(r"struct\s+" + struct + r"\s*\{(.*?)\n\}", text, re.S)
    if not m:
        sys.exit(f"error: no struct {struct} in {path}: update policy_check.py")
    return re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?([a-z_][a-z0-9_]*)\s*:", m.group(1), re.M)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


# ----------------------------------------------------------------------------------------------
# Manifests.


def pod_spec(obj: dict) -> dict:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def env_map(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def port_of(addr: str) -> str:
    return addr.rsplit(":", 1)[-1]


def check_container(c: Checks, where: str, pod: dict, ctr: dict, known_env: set[str]) -> None:
    psc = pod.get("securityContext", {})
    sc = ctr.get("securityContext", {})
    non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    c.check(non_root is True, f"{where}: runAsNonRoot is not true")
    c.check(uid is not None and uid != 0, f"{where}: no non-zero runAsUser")
    c.check(sc.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem not read-only")
    c.check(sc.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation allowed")
    c.check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{where}: capabilities not dropped")
    c.check(not sc.get("privileged", False), f"{where}: privileged")
    seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
    c.check(seccomp in ("RuntimeDefault", "Localhost"), f"{where}: no seccomp profile")

    res = ctr.get("resources", {})
    req, lim = res.get("requests", {}), res.get("limits", {})
    c.check("cpu" in req and "memory" in req, f"{where}: no cpu/memory requests")
    c.check("memory" in lim, f"{where}: no memory limit")

    image = ctr.get("image", "")
    name_tag = image.split("@", 1)[0]
    tag = name_tag.rsplit(":", 1)[1] if ":" in name_tag.rsplit("/", 1)[-1] else None
    c.check("@sha256:" in image or (tag is not None and tag != "latest"),
            f"{where}: image {image!r} has no pinned tag or digest")

    for name, e in env_map(ctr).items():
        literal = "value" in e and e.get("value") not in (None, "")
        if SECRET_NAMES.search(name) and not name.endswith("_FILE"):
            c.check(not literal, f"{where}: {name} carries a literal secret value")
        if name.startswith("PEDALS_"):
            c.check(name in known_env, f"{where}: {name} is not read by `pedals`")
    c.check("PEDALS_PASSWORD" not in env_map(ctr), f"{where}: use PEDALS_PASSWORD_FILE, not PEDALS_PASSWORD")

    for probe in ("livenessProbe", "readinessProbe"):
        c.check(probe in ctr, f"{where}: no {probe}")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in ctr.get("volumeMounts", []):
        vol = volumes.get(m["name"], {})
        if "secret" in vol:
            c.check(m.get("readOnly") is True, f"{where}: Secret volume {m['name']} not read-only")
            mode = vol["secret"].get("defaultMode", 0o644)
            c.check(mode & 0o007 == 0, f"{where}: Secret volume {m['name']} is world-readable")
            c.check("subPath" not in m, f"{where}: Secret {m['name']} mounted by subPath (never refreshed)")


def check_pedals_pod(c: Checks, where: str, obj: dict, ctr: dict, objects: list[dict],
                     rendered: dict[tuple[str, str], dict]) -> dict[str, dict]:
    """Checks of a container that runs `pedals`; returns its env."""
    env = env_map(ctr)
    pod = pod_spec(obj)
    annotations = obj["spec"]["template"]["metadata"].get("annotations", {})
    ports = {p.get("name"): p["containerPort"] for p in ctr.get("ports", [])}
    addr = env.get("PEDALS_METRICS_ADDR", {}).get("value", "")
    c.check(addr.startswith("0.0.0.0:"), f"{where}: PEDALS_METRICS_ADDR {addr!r} is not reachable from outside the pod")
    c.check(str(ports.get("metrics")) == port_of(addr), f"{where}: port `metrics` differs from PEDALS_METRICS_ADDR")
    c.check(annotations.get("prometheus.io/scrape") == "true", f"{where}: no prometheus.io/scrape")
    c.check(annotations.get("prometheus.io/port") == port_of(addr), f"{where}: prometheus.io/port differs from PEDALS_METRICS_ADDR")
    c.check(annotations.get("prometheus.io/path") == "/metrics", f"{where}: prometheus.io/path is not /metrics")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = ctr.get(probe, {}).get("httpGet")
        if get:
            c.check(get.get("path") in ("/health", "/metrics") and get.get("port") in ("metrics", ports.get("metrics")),
                    f"{where}: {probe} does not ask /health or /metrics on the metrics port")
    c.check(ctr.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/health",
            f"{where}: readiness is not /health")
    listen = env.get("PEDALS_LISTEN", {}).get("value", "")
    c.check("/ip4/0.0.0.0/tcp/4001" in listen, f"{where}: PEDALS_LISTEN does not listen on 0.0.0.0 tcp/4001")
    c.check(ports.get("p2p-tcp") == 4001, f"{where}: no p2p-tcp port 4001")

    # Files the settings name must be on mounted volumes.
    mounts = {m["mountPath"]: m["name"] for m in ctr.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}

    def volume_of(path: str) -> dict | None:
        for mount, name in mounts.items():
            if path.startswith(mount.rstrip("/") + "/") or path == mount:
                return volumes.get(name, {"name": name, "claimTemplate": True})
        return None

    for var, kind in (("PEDALS_KEYSTORE", "secret"), ("PEDALS_PASSWORD_FILE", "secret"),
                      ("PEDALS_DEPLOYMENT", "configMap")):
        path = env.get(var, {}).get("value", "")
        vol = volume_of(path)
        c.check(vol is not None and kind in vol, f"{where}: {var} {path!r} is not on a {kind} volume")
        if vol and kind in vol:
            ref = vol[kind].get("secretName") or vol[kind].get("name")
            if kind == "configMap":
                c.check(("ConfigMap", ref) in rendered, f"{where}: ConfigMap {ref} is not rendered")
    data = volume_of(env.get("PEDALS_DATA_DIR", {}).get("value", "/nonexistent"))
    c.check(data is not None and "emptyDir" not in (data or {}), f"{where}: PEDALS_DATA_DIR is not on a persistent volume")
    labels = obj["spec"]["template"]["metadata"].get("labels", {})
    c.check(labels.get("app.kubernetes.io/part-of") == "pedals", f"{where}: pod not labelled part-of=pedals (NetworkPolicy)")
    return env


def check_deployment_json(c: Checks, where: str, text: str, fields: list[str], chain_id: int) -> None:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        c.check(False, f"{where}: deployment.json is not JSON: {e}")
        return
    want = {camel(f) for f in fields}
    c.check(want <= set(doc), f"{where}: deployment.json lacks {sorted(want - set(doc))}")
    c.check(doc.get("chainId") == chain_id, f"{where}: deployment.json chainId {doc.get('chainId')} != {chain_id}")
    addresses = [v for k, v in doc.items() if k not in ("chainId", "deploymentBlock")]
    c.check(all(isinstance(a, str) and re.fullmatch(r"0x[0-9a-fA-F]{40}", a) for a in addresses),
            f"{where}: deployment.json has a malformed address")
    if doc.get("jobMarket", "0x" + "0" * 40) == "0x" + "0" * 40:
        c.notes.setdefault(f"{where}: deployment.json is a placeholder (zero addresses); replace it with "
                       f"the file the deploy wrote (contracts/deployments/{chain_id}.json)", None)


def check_overlay(c: Checks, repo: Path, overlay: str, chain_id: int, path: Path, gpu: bool) -> None:
    objects = [o for o in yaml.safe_load_all(path.read_text()) if o]
    rendered = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    known_env = source_env_names(repo)
    file_keys = set(struct_fields(repo / "market-cli/src/cmd/provider.rs", "FileConfig"))
    deployment_fields = struct_fields(repo / "crates/chain/src/deployment.rs", "Deployment")

    # No Secret travels in the manifests: they are created from keystores out of band.
    for o in objects:
        if o["kind"] == "Secret":
            c.check(not o.get("data") and not o.get("stringData"),
                    f"{overlay}: Secret {o['metadata']['name']} is inlined with values")
    # ConfigMaps must not carry secrets either.
    for o in objects:
        if o["kind"] == "ConfigMap":
            for k, v in (o.get("data") or {}).items():
                c.check(not (SECRET_NAMES.search(k) and v), f"{overlay}: ConfigMap {o['metadata']['name']} key {k} looks like a secret")
                c.check(not re.search(r"\b(0x)?[0-9a-fA-F]{64}\b", v or ""), f"{overlay}: ConfigMap {o['metadata']['name']} key {k} holds a 32-byte hex value (a private key?)")

    workloads = [o for o in objects if o["kind"] in WORKLOADS]
    c.check(bool(workloads), f"{overlay}: no workloads rendered")
    kinds_seen = set()
    for o in workloads:
        pod = pod_spec(o)
        name = f"{overlay}: {o['kind']}/{o['metadata']['name']}"
        c.check(pod.get("automountServiceAccountToken") is False, f"{name}: service account token mounted")
        c.check(not pod.get("hostNetwork") and not pod.get("hostPID"), f"{name}: host namespaces")
        for ctr in pod.get("initContainers", []) + pod["containers"]:
            where = f"{name} container {ctr['name']}"
            check_container(c, where, pod, ctr, known_env)
            if ctr.get("args", [None])[0] not in ("provider", "validator"):
                continue
            role = ctr["args"][0]
            kinds_seen.add(role)
            env = check_pedals_pod(c, where, o, ctr, objects, rendered)
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            mounts = {m["name"]: m["mountPath"] for m in ctr.get("volumeMounts", [])}
            # The deployment file of the right chain.
            dep_mount = next((n for n, p in mounts.items()
                              if env["PEDALS_DEPLOYMENT"]["value"].startswith(p + "/")), None)
            cm = volumes.get(dep_mount, {}).get("configMap", {}).get("name")
            dep = rendered.get(("ConfigMap", cm), {}).get("data", {})
            file = env["PEDALS_DEPLOYMENT"]["value"].rsplit("/", 1)[-1]
            c.check(file in dep, f"{where}: ConfigMap {cm} has no {file}")
            if file in dep:
                check_deployment_json(c, f"{overlay}: ConfigMap {cm}", dep[file], deployment_fields, chain_id)

            if role == "provider":
                check_worker(c, where, o, ctr, env, rendered, volumes, mounts, file_keys, gpu)
            else:
                c.check(o["kind"] == "Deployment" and o["spec"].get("replicas") == 1,
                        f"{where}: the validator is not a one-replica Deployment")
                c.check(o["spec"].get("strategy", {}).get("type") == "Recreate",
                        f"{where}: the validator's strategy is not Recreate (two pods would share a key)")
                env_cms = [e["configMapRef"]["name"] for e in ctr.get("envFrom", []) if "configMapRef" in e]
                for cm in env_cms:
                    data = rendered.get(("ConfigMap", cm), {}).get("data")
                    c.check(data is not None, f"{where}: envFrom ConfigMap {cm} is not rendered")
                    for k in data or {}:
                        c.check(k in known_env, f"{where}: ConfigMap {cm} sets {k}, which `pedals` does not read")
                    c.check("PEDALS_RPC_URL" in (data or {}) or "PEDALS_RPC_URL" in env,
                            f"{where}: no PEDALS_RPC_URL")
                    for k in (data or {}):
                        c.check(k not in env, f"{where}: {k} set both in the pod and in ConfigMap {cm}")
    c.check(kinds_seen == {"provider", "validator"}, f"{overlay}: expected a worker and a validator, found {sorted(kinds_seen)}")

    # Every pedals pod is covered by the NetworkPolicy, which admits libp2p and the scrape.
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    c.check(any(p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/part-of") == "pedals"
                for p in policies), f"{overlay}: no NetworkPolicy selects part-of=pedals")
    for p in policies:
        rules = p["spec"].get("ingress", [])
        open_ports = {(q.get("port"), q.get("protocol", "TCP")) for r in rules if not r.get("from") for q in r.get("ports", [])}
        c.check({(4001, "TCP"), (4001, "UDP")} <= open_ports, f"{overlay}: NetworkPolicy {p['metadata']['name']} does not admit libp2p")
        scrape = [r for r in rules if any(f.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "monitoring"
                                          for f in r.get("from", []))]
        c.check(bool(scrape), f"{overlay}: NetworkPolicy {p['metadata']['name']} does not admit the monitoring namespace")
        c.check("Egress" in p["spec"].get("policyTypes", []), f"{overlay}: NetworkPolicy has no egress rules")


def check_worker(c: Checks, where: str, sts: dict, ctr: dict, env: dict, rendered: dict,
                 volumes: dict, mounts: dict, file_keys: set[str], gpu: bool) -> None:
    c.check(sts["kind"] == "StatefulSet", f"{where}: workers are not a StatefulSet")
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    c.check(mounts.get("data") == env.get("PEDALS_DATA_DIR", {}).get("value") and "data" in claims,
            f"{where}: the data dir is not the `data` volume claim template")
    svc = rendered.get(("Service", sts["spec"].get("serviceName")))
    c.check(svc is not None and svc["spec"].get("clusterIP") == "None", f"{where}: serviceName is not a headless Service")
    if svc:
        labels = sts["spec"]["template"]["metadata"]["labels"]
        c.check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), f"{where}: the headless Service does not select the workers")
        c.check({(p["port"], p.get("protocol", "TCP")) for p in svc["spec"]["ports"]} >= {(4001, "TCP"), (4001, "UDP")},
                f"{where}: the headless Service lacks the libp2p ports")

    # Each pod its own key: POD_NAME from the pod's name, defined before its uses.
    names = [e["name"] for e in ctr.get("env", [])]
    pod_name = env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    c.check(pod_name == "metadata.name", f"{where}: POD_NAME is not the pod's name")
    for var in ("PEDALS_KEYSTORE", "PEDALS_PASSWORD_FILE"):
        c.check("$(POD_NAME)" in env.get(var, {}).get("value", ""), f"{where}: {var} is not per pod ($(POD_NAME))")
        c.check("POD_NAME" in names and var in names and names.index("POD_NAME") < names.index(var),
                f"{where}: POD_NAME must come before {var} for $(POD_NAME) to expand")

    # provider.toml: parses, only keys the binary knows, none that the pod spec owns.
    path = env.get("PEDALS_CONFIG", {}).get("value", "")
    mount = next((n for n, p in mounts.items() if path.startswith(p + "/")), None)
    cm = volumes.get(mount, {}).get("configMap", {}).get("name")
    text = rendered.get(("ConfigMap", cm), {}).get("data", {}).get(path.rsplit("/", 1)[-1])
    if c.check(text is not None, f"{where}: PEDALS_CONFIG {path!r} is not in a rendered ConfigMap"):
        try:
            toml = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            c.check(False, f"{where}: provider.toml does not parse: {e}")
            return
        c.check(set(toml) <= file_keys, f"{where}: provider.toml keys {sorted(set(toml) - file_keys)} are unknown to `pedals provider run`")
        c.check(not (set(toml) & LAYOUT_KEYS), f"{where}: provider.toml sets {sorted(set(toml) & LAYOUT_KEYS)}, which the pod's environment overrides")
        c.check("rpc_url" in toml, f"{where}: provider.toml has no rpc_url")
        for k in ("stake_wei", "min_wei_per_step", "min_wei_per_second"):
            c.check(k not in toml or (isinstance(toml[k], str) and toml[k].isdigit()), f"{where}: {k} must be a decimal string")

    pod = pod_spec(sts)
    has_gpu = "nvidia.com/gpu" in ctr.get("resources", {}).get("limits", {})
    if gpu or has_gpu:
        c.check(has_gpu, f"{where}: GPU overlay without an nvidia.com/gpu limit")
        c.check(bool(pod.get("nodeSelector")) and any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])),
                f"{where}: GPU workers need a nodeSelector and the nvidia.com/gpu toleration")
        c.check("worker-gpu" in ctr["image"], f"{where}: GPU workers do not run the worker-gpu image")


# ----------------------------------------------------------------------------------------------
# Dockerfile.


def check_dockerfile(c: Checks, path: Path) -> None:
    lines, buf = [], ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") and not buf:
            continue
        buf += raw.rstrip("\\").rstrip() + " " if raw.endswith("\\") else raw
        if not raw.endswith("\\"):
            if buf.strip():
                lines.append(buf.strip())
            buf = ""
    args = {m.group(1): m.group(2) for line in lines if (m := re.match(r"ARG (\w+)=(\S+)", line))}
    stages: dict[str, dict] = {}
    current = None
    for line in lines:
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            m = re.match(r"(\S+)(?: AS (\S+))?", rest, re.I)
            base = re.sub(r"\$\{(\w+)\}", lambda a: args.get(a.group(1), ""), m.group(1))
            current = {"base": base, "user": None, "lines": [], "volume": False}
            stages[(m.group(2) or base).lower()] = current
        elif current is not None:
            current["lines"].append(line)
            if op == "USER":
                current["user"] = rest.split(":")[0]
            if op == "VOLUME":
                current["volume"] = True

    def resolve(stage: str, field: str):
        s = stages[stage]
        while s[field] in (None, False) and s["base"] in stages:
            s = stages[s["base"]]
        return s[field]

    for target in ("worker", "worker-gpu", "validator"):
        if not c.check(target in stages, f"Dockerfile: no `{target}` target"):
            continue
        user = resolve(target, "user")
        c.check(user is not None and user.isdigit() and user != "0", f"Dockerfile: `{target}` does not end as a numeric non-root USER")
        c.check(resolve(target, "volume") is True, f"Dockerfile: `{target}` declares no VOLUME for the data dir")
        cmd = next((l for l in reversed(stages[target]["lines"]) if l.upper().startswith("CMD")), "")
        want = "provider" if target.startswith("worker") else "validator"
        c.check(f'"{want}", "run"' in cmd, f"Dockerfile: `{target}` does not run `pedals {want} run`")
    c.check(list(stages)[-1] == "worker", "Dockerfile: the last stage (the default target) should be the CPU worker")
    text = path.read_text()
    c.check("cargo build --release --locked -p pedals" in text, "Dockerfile: not `cargo build --release --locked -p pedals`")
    for s in stages.values():
        base = s["base"]
        if base in stages:
            continue
        c.check(":" in base and not base.endswith(":latest"), f"Dockerfile: base image {base!r} is not pinned")
    c.check(not re.search(r"(COPY|ADD)[^\n]*(keystore|\.pass|password|\.key)\b", text, re.I), "Dockerfile: copies a key")
    c.check(not re.search(r"ENV[^\n]*PEDALS_PASSWORD\b", text), "Dockerfile: sets a password")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--dockerfile", type=Path)
    parser.add_argument("overlays", nargs="*", help="NAME=CHAIN_ID=RENDERED.yaml")
    args = parser.parse_args()
    c = Checks()
    if args.dockerfile:
        check_dockerfile(c, args.dockerfile)
    for spec in args.overlays:
        name, chain_id, rendered = spec.split("=", 2)
        check_overlay(c, args.repo, name, int(chain_id), Path(rendered), gpu=name.endswith("gpu"))
    for note in c.notes:
        print(f"note: {note}")
    for failure in c.failed:
        print(f"FAIL {failure}", file=sys.stderr)
    print(f"policy: {c.passed} passed, {len(c.failed)} failed")
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
