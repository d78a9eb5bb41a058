#!/usr/bin/env python3
"""Checks of the deployment artefacts that no off-the-shelf tool makes, and the schema
preparation for kubeconform. Run by scripts/deploy-check.sh (in its virtualenv: PyYAML).

Subcommands:
  k8s-schemas SRC DEST        kubernetes-validate's "-local-strict" schemas of one Kubernetes
                              version -> a kubeconform schema directory (refs made file-relative)
  crd-schemas CRD.yaml DEST   a CustomResourceDefinition -> DEST/<group>/<kind>_<version>.json,
                              strict (additionalProperties: false unless the CRD allows more)
  build-context ROOT          every COPY source of deploy/Containerfile exists and passes
                              deploy/Containerfile.dockerignore; the cargo packages and binaries
                              it names exist
  compose RESOLVED.yaml ROOT  the resolved compose model: env names known to each binary,
                              health checks on the right port and service, loopback-only ports
  k8s RENDERED.yaml ROOT      a rendered kustomization: env names, TLS and identity of every
                              server from Secrets (no token file), allianced's signing key from a
                              Secret, Kafka over SASL_SSL (password from a Secret, the broker's CA
                              mounted), probes over TLS, resources, security context, references,
                              PDBs, Services, the KafkaTopic, the KafkaUsers and their ACLs; a
                              rendered identity configuration: peers, peer TLS, the writers'
                              [[signing_key]]
  tokens ROOT                 the development token file and the example overlay's identity
                              configuration hold every team the reference plan is issued as
  otel-variant SRC DEST       the collector config with its optional exporter uncommented and
                              added to the traces pipeline
"""

import base64
import fnmatch
import json
import os
import re
import sys
import tomllib
from pathlib import Path

import yaml

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"  FAIL {message}")


def done(what: str) -> int:
    if failures:
        print(f"{what}: {len(failures)} problem(s)")
        return 1
    print(f"{what}: ok")
    return 0


# ---- schemas ---------------------------------------------------------------------------------

DEFINITIONS_REF = "/api/_definitions.json#"


def each_object(node, visit):
    """Calls `visit` on every object (dict) of a parsed JSON or YAML tree, each before the
    objects it holds."""
    if isinstance(node, dict):
        visit(node)
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return
    for child in children:
        each_object(child, visit)


def relative_ref(node):
    """kubernetes-validate's schemas carry `$id: https://kubernetes.io/api/...` and refer to
    `/api/_definitions.json#/$defs/...`, which kubeconform would fetch over HTTP. Without the
    `$id`, a file-relative ref resolves to the sibling file on disk."""
    node.pop("$id", None)
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(DEFINITIONS_REF):
        node["$ref"] = "_definitions.json#" + ref[len(DEFINITIONS_REF):]


def k8s_schemas(src: str, dest: str) -> int:
    src_dir, dest_dir = Path(src), Path(dest)
    tmp = dest_dir.with_name(dest_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(src_dir.glob("*.json")):
        schema = json.loads(path.read_text())
        each_object(schema, relative_ref)
        (tmp / path.name).write_text(json.dumps(schema))
        count += 1
    if count == 0 or not (tmp / "_definitions.json").exists():
        print(f"no schemas in {src_dir}")
        return 1
    tmp.rename(dest_dir)
    print(f"{count} schemas -> {dest_dir}")
    return 0


def strict_object(node):
    """OpenAPI v3 (structural CRD schema) -> JSON Schema, strict like kubeconform's
    openapi2jsonschema: objects with declared properties accept no others."""
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node and not preserve:
        node["additionalProperties"] = False


def crd_schemas(crd_path: str, dest: str) -> int:
    crd = yaml.safe_load(Path(crd_path).read_text())
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    out_dir = Path(dest) / group
    out_dir.mkdir(parents=True, exist_ok=True)
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        each_object(schema, strict_object)
        properties = schema.setdefault("properties", {})
        properties["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        properties["kind"] = {"type": "string", "enum": [kind]}
        schema["$schema"] = "http://json-schema.org/draft-04/schema#"
        out = out_dir / f"{kind.lower()}_{version['name']}.json"
        out.write_text(json.dumps(schema, indent=1))
        print(f"{kind} {group}/{version['name']} -> {out}")
    return 0


# ---- binaries and their settings ------------------------------------------------------------

BINARY_SOURCES = {
    "allianced": "services/allianced/src/main.rs",
    "alliance-projection": "services/alliance-projection/src/main.rs",
    "alliance-simulation": "services/alliance-simulation/src/main.rs",
    "alliancectl": "services/alliancectl/src/main.rs",
}
# Read by every binary (tracing's filter), or only a helper of the manifests themselves.
COMMON_ENV = {"RUST_LOG"}
K8S_HELPER_ENV = {"POD_IP", "KAFKA_PASSWORD"}
# What a server of the Kubernetes manifests must read from mounted Secrets, and must not be given.
SECURITY_ENV = ["ALLIANCE_AUTH_CONFIG", "ALLIANCE_TLS_CERT", "ALLIANCE_TLS_KEY"]
INSECURE_ENV = {"ALLIANCE_PLAINTEXT", "ALLIANCE_DEV_TOKENS_BEYOND_LOOPBACK"}
# Where each server's TLS Secret is mounted (the identity configuration, one for all, names it).
TLS_MOUNT = "/etc/alliance/tls"
HEALTH_SERVICE = {
    "allianced": "alliance.v1.PlanCommands",
    "alliance-projection": "alliance.v1.PostureQueries",
    "alliance-simulation": "alliance.v1.Simulation",
}
DEFAULT_PORT = {"allianced": 50051, "alliance-projection": 50061, "alliance-simulation": 50071}
# Each server's librdkafka settings (KEY=VALUE,...): over SASL_SSL with a password from a Secret.
KAFKA_CLIENT_ENV = {
    "allianced": "ALLIANCED_KAFKA_CLIENT",
    "alliance-projection": "ALLIANCE_PROJECTION_KAFKA_CLIENT",
    "alliance-simulation": "ALLIANCE_SIMULATION_KAFKA_CLIENT",
}
SASL_MECHANISMS = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
# Strimzi's KafkaUser authentication types, by the SASL mechanism they give a principal.
STRIMZI_AUTHENTICATION = {"SCRAM-SHA-512": "scram-sha-512"}


def server_env(root: Path) -> set[str]:
    """What every server reads beside its own flags: the shared security arguments (the crate
    that defines `SecurityArgs`, wherever it lives), the telemetry crate's variables, and the
    OpenTelemetry SDK's `OTEL_*` (accepted by prefix in `check_env`)."""
    names = set()
    for source in sorted((root / "crates").glob("*/src/**/*.rs")):
        text = source.read_text()
        if "struct SecurityArgs" in text:
            names.update(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', text))
    for source in sorted((root / "crates/alliance-telemetry").glob("src/**/*.rs")):
        names.update(re.findall(r'env::var\("([A-Z0-9_]+)"\)', source.read_text()))
    if "ALLIANCE_PLAINTEXT" not in names:
        fail("no SecurityArgs with ALLIANCE_PLAINTEXT found under crates/")
    return names


def binary_env(root: Path) -> dict[str, set[str]]:
    names = {}
    shared = server_env(root)
    for binary, source in BINARY_SOURCES.items():
        # The binary's whole crate: its flags may be defined in any module of it.
        text = "".join(path.read_text() for path in sorted((root / source).parent.glob("**/*.rs")))
        names[binary] = set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', text))
        if not names[binary]:
            fail(f"no env names found in {source}")
        if binary in HEALTH_SERVICE:
            names[binary] |= shared
    return names


def binary_of(command) -> str | None:
    if not command:
        return None
    return os.path.basename(str(command[0]))


def check_env(where: str, binary: str, env_names, known: dict[str, set[str]]) -> None:
    allowed = known.get(binary, set()) | COMMON_ENV
    for name in env_names:
        if name in allowed or (binary in HEALTH_SERVICE and name.startswith("OTEL_")):
            continue
        owner = [b for b, names in known.items() if name in names]
        hint = f" (read by {', '.join(owner)})" if owner else " (read by no binary)"
        fail(f"{where}: {binary} does not read {name}{hint}")


# ---- build context ---------------------------------------------------------------------------


def dockerignore_patterns(path: Path):
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        patterns.append((negate, pattern.strip("/")))
    return patterns


def ignored(relpath: str, patterns) -> bool:
    """Docker's rule: the last matching pattern decides; a pattern matching a parent directory
    matches everything below it."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, pattern in patterns:
        regex = fnmatch.translate(pattern.replace("**/", "\0")).replace("\0", "(?:.*/)?")
        if any(re.match(regex, prefix) for prefix in prefixes):
            result = not negate
    return result


def build_context(root_arg: str) -> int:
    root = Path(root_arg)
    containerfile = root / "deploy/Containerfile"
    patterns = dockerignore_patterns(root / "deploy/Containerfile.dockerignore")
    text = containerfile.read_text()
    logical = re.sub(r"\\\n", " ", text)
    sources = []
    for line in logical.splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources.extend(args[:-1])
    if not sources:
        fail("no COPY from the build context found in deploy/Containerfile")
    for source in sources:
        path = root / source
        if not path.exists():
            fail(f"COPY source {source} does not exist")
            continue
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        tracked = [p for p in files if "target" not in p.relative_to(root).parts and "__pycache__" not in p.parts]
        sent = [p for p in tracked if not ignored(str(p.relative_to(root)), patterns)]
        if not sent:
            fail(f"COPY source {source} is excluded by deploy/Containerfile.dockerignore")
        print(f"  COPY {source}: {len(sent)} file(s) in the context")
    for unwanted in ["target/release/allianced", "data/alliance.db", ".git/HEAD", "docs/api.md"]:
        if not ignored(unwanted, patterns):
            fail(f"{unwanted} would be sent with the build context")

    packages = {}
    for manifest in sorted((root / "services").glob("*/Cargo.toml")):
        data = tomllib.loads(manifest.read_text())
        name = data["package"]["name"]
        bins = [b["name"] for b in data.get("bin", [])] or [name]
        packages[name] = bins
    built = re.search(r"cargo build[^&]*", logical)
    if not built:
        fail("no cargo build in deploy/Containerfile")
        return done("build context")
    wanted = re.findall(r"-p\s+(\S+)", built.group(0))
    binaries = set()
    for package in wanted:
        if package not in packages:
            fail(f"cargo package {package} is not in services/")
        binaries.update(packages.get(package, []))
    for binary in BINARY_SOURCES:
        if binary not in binaries:
            fail(f"binary {binary} is not built")
        if f"target/release/{binary}" not in logical:
            fail(f"binary {binary} is not copied out of target/release")
    print(f"  cargo packages {', '.join(wanted)} -> binaries {', '.join(sorted(binaries))}")

    env_names = set()
    for match in re.finditer(r"^ENV\s+(.*?)(?=^\S|\Z)", logical, re.M | re.S):
        env_names.update(re.findall(r"([A-Z][A-Z0-9_]*)=", match.group(1)))
    known = binary_env(root)
    for name in sorted(env_names):
        if not any(name in names for names in known.values()) and name not in COMMON_ENV:
            fail(f"Containerfile ENV {name} is read by no binary")
    print(f"  image ENV: {', '.join(sorted(env_names))}")
    return done("build context")


# ---- compose ---------------------------------------------------------------------------------


def compose(resolved: str, root_arg: str) -> int:
    root = Path(root_arg)
    model = yaml.safe_load(Path(resolved).read_text())
    known = binary_env(root)
    services = model.get("services", {})
    images = set()
    for name, service in services.items():
        for port in service.get("ports", []):
            if port.get("published") and port.get("host_ip") != "127.0.0.1":
                fail(f"compose {name}: port {port.get('target')} is published beyond 127.0.0.1")
        binary = binary_of(service.get("entrypoint")) or binary_of(service.get("command"))
        if binary not in BINARY_SOURCES:
            continue
        images.add(service.get("image"))
        environment = service.get("environment") or {}
        check_env(f"compose {name}", binary, environment.keys(), known)
        if binary in HEALTH_SERVICE:
            test = " ".join((service.get("healthcheck") or {}).get("test") or [])
            port = DEFAULT_PORT[binary]
            if "grpc_health_probe" not in test:
                fail(f"compose {name}: no grpc_health_probe health check")
            if f"-addr=127.0.0.1:{port}" not in test or f"-service={HEALTH_SERVICE[binary]}" not in test:
                fail(f"compose {name}: health check should probe 127.0.0.1:{port} for {HEALTH_SERVICE[binary]}")
            if not service.get("volumes"):
                fail(f"compose {name}: no volume for its data")
        print(f"  {name}: {binary}, env {', '.join(sorted(environment))}")
    if len(images) != 1:
        fail(f"compose: the alliance services should share one image, found {sorted(map(str, images))}")
    simulation = [s for s in services.values() if binary_of(s.get("command")) == "alliance-simulation"]
    for service in simulation:
        target = (service.get("environment") or {}).get("ALLIANCE_SIMULATION_COMMANDS", "")
        host = target.removeprefix("http://").split(":")[0]
        if host not in services:
            fail(f"compose: ALLIANCE_SIMULATION_COMMANDS {target!r} names no service")
    advertised = [
        (s.get("environment") or {}).get("ALLIANCED_ADVERTISE")
        for s in services.values()
        if binary_of(s.get("command")) == "allianced"
    ]
    if len(advertised) < 2 or len(set(advertised)) != len(advertised) or None in advertised:
        fail(f"compose: each allianced needs an ALLIANCED_ADVERTISE of its own, found {advertised}")
    for address in filter(None, advertised):
        if address.split(":")[0] not in services:
            fail(f"compose: ALLIANCED_ADVERTISE {address} is not a service name")
    return done("compose model")


# ---- kubernetes ------------------------------------------------------------------------------


def k8s(rendered: str, root_arg: str) -> int:
    root = Path(root_arg)
    docs = [d for d in yaml.safe_load_all(Path(rendered).read_text()) if d]
    known = binary_env(root)
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments = by_kind.get("Deployment", {})
    for wanted in ["allianced", "alliance-projection", "alliance-simulation"]:
        if wanted not in deployments:
            fail(f"no Deployment {wanted}")
    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    readme = (root / "deploy/README.md").read_text()
    # Per Deployment: the Secret of its TLS files and the name its probes check it for.
    tls_of: dict[str, tuple[str | None, str | None]] = {}
    # Per Deployment: the Kafka principal of its settings and the Secret of its password.
    kafka_users: dict[str, tuple[str, str, tuple[str, str] | None] | None] = {}
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        pod_security = spec.get("securityContext", {})
        if not pod_security.get("runAsNonRoot") or not isinstance(pod_security.get("runAsUser"), int) or pod_security.get("runAsUser") == 0:
            fail(f"{name}: pod must run as a numeric non-root user")
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(f"{name}: seccompProfile RuntimeDefault missing")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume and volume["configMap"]["name"] not in configmaps:
                fail(f"{name}: volume {volume['name']} names a missing ConfigMap {volume['configMap']['name']}")
            if "secret" in volume and volume["secret"]["secretName"] not in secrets:
                secret = volume["secret"]["secretName"]
                if f"`{secret}`" in readme:
                    print(f"  {name}: Secret {secret} is made outside kustomize (deploy/README.md)")
                else:
                    fail(f"{name}: volume {volume['name']} names a Secret {secret} that is neither rendered nor documented in deploy/README.md")
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            binary = binary_of(container.get("command"))
            if binary not in HEALTH_SERVICE:
                fail(f"{where}: command {container.get('command')} runs no service binary")
                continue
            env = container.get("env", [])
            check_env(where, binary, [e["name"] for e in env if e["name"] not in K8S_HELPER_ENV], known)
            for entry in env:
                ref = entry.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    cm = configmaps.get(ref["name"])
                    if cm is None or ref["key"] not in cm.get("data", {}):
                        fail(f"{where}: {entry['name']} refers to missing {ref['name']}/{ref['key']}")
            port = DEFAULT_PORT[binary]
            if [p.get("containerPort") for p in container.get("ports", [])] != [port]:
                fail(f"{where}: container port should be {port}")
            listen = {e["name"]: e.get("value") for e in env}
            listen_var = {"allianced": "ALLIANCED_LISTEN", "alliance-projection": "ALLIANCE_PROJECTION_LISTEN", "alliance-simulation": "ALLIANCE_SIMULATION_LISTEN"}[binary]
            if listen.get(listen_var) != f"0.0.0.0:{port}":
                fail(f"{where}: {listen_var} should be 0.0.0.0:{port}")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}

            def secret_file(path) -> str | None:
                """The Secret holding the mounted file `path`, or None."""
                mount = next((m for m in mounts if isinstance(path, str) and path.startswith(m + "/")), None)
                source = volumes.get(mounts.get(mount), {}) if mount else {}
                return source.get("secret", {}).get("secretName")

            # Secure by default: who may call from an identity configuration, TLS, no token file.
            for var in SECURITY_ENV:
                if not secret_file(listen.get(var)):
                    fail(f"{where}: {var} should name a file of a mounted Secret, found {listen.get(var)!r}")
            for var in listen:
                if var.endswith("_TOKEN_FILE") or var in INSECURE_ENV:
                    fail(f"{where}: {var} is set: a server beyond loopback takes an identity configuration and TLS")
            tls_secret = secret_file(listen.get("ALLIANCE_TLS_CERT"))
            if mounts.get(TLS_MOUNT) is None or volumes.get(mounts[TLS_MOUNT], {}).get("secret", {}).get("secretName") != tls_secret:
                fail(f"{where}: its TLS Secret should be mounted at {TLS_MOUNT}")
            server_names = set()
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"]:
                spec_ = container.get(probe, {})
                words = spec_.get("exec", {}).get("command", [])
                flags = dict(w[1:].split("=", 1) for w in words[1:] if w.startswith("-") and "=" in w)
                if "grpc" in spec_:
                    fail(f"{where}: {probe} is a kubelet gRPC probe, which has no TLS: use grpc_health_probe -tls")
                    continue
                if not words or os.path.basename(words[0]) != "grpc_health_probe" or "-tls" not in words:
                    fail(f"{where}: {probe} should exec grpc_health_probe -tls")
                    continue
                if flags.get("addr") != f"127.0.0.1:{port}":
                    fail(f"{where}: {probe} should probe -addr=127.0.0.1:{port}")
                for flag in ["tls-ca-cert", "tls-client-cert", "tls-client-key"]:
                    if secret_file(flags.get(flag)) != tls_secret:
                        fail(f"{where}: {probe} -{flag} should be a file of the server's TLS Secret {tls_secret}")
                server_names.add(flags.get("tls-server-name"))
                if probe == "readinessProbe" and flags.get("service") != HEALTH_SERVICE[binary]:
                    fail(f"{where}: readiness should ask for {HEALTH_SERVICE[binary]}")
            if len(server_names) != 1 or None in server_names:
                fail(f"{where}: the probes should check one -tls-server-name, found {sorted(map(str, server_names))}")
            server_name = next(iter(server_names), None)
            if server_name not in by_kind.get("Service", {}):
                fail(f"{where}: -tls-server-name {server_name} is no Service (the name clients reach it at)")
            tls_of[name] = (tls_secret, server_name)
            resources = container.get("resources", {})
            for kind in ["requests", "limits"]:
                for resource in ["cpu", "memory"]:
                    if resource not in resources.get(kind, {}):
                        fail(f"{where}: resources.{kind}.{resource} missing")
            security = container.get("securityContext", {})
            if security.get("readOnlyRootFilesystem") is not True or security.get("allowPrivilegeEscalation") is not False:
                fail(f"{where}: needs readOnlyRootFilesystem true and allowPrivilegeEscalation false")
            if security.get("capabilities", {}).get("drop") != ["ALL"]:
                fail(f"{where}: capabilities should drop ALL")
            for path in ["/var/lib/alliance", "/tmp"]:
                if path not in mounts or "emptyDir" not in volumes.get(mounts[path], {}) and "persistentVolumeClaim" not in volumes.get(mounts[path], {}):
                    fail(f"{where}: {path} should be a writable volume (read-only root)")
            for entry in env:
                value = entry.get("value", "")
                if isinstance(value, str) and value.startswith("/etc/alliance/"):
                    mount = next((m for m in mounts if value.startswith(m + "/")), None)
                    if mount is None:
                        fail(f"{where}: {entry['name']}={value} is on no mounted volume")
                    else:
                        source = volumes[mounts[mount]]
                        key = value[len(mount) + 1:]
                        data = None
                        if "configMap" in source:
                            data = configmaps.get(source["configMap"]["name"], {}).get("data", {})
                        elif "secret" in source and source["secret"]["secretName"] in secrets:
                            data = secrets[source["secret"]["secretName"]].get("data", {})
                        if data is not None and key not in data:
                            fail(f"{where}: {entry['name']}={value}: {key} is not in the mounted {mounts[mount]}")
            kafka_users[name] = kafka_client(where, binary, env, secret_file, mounts, volumes)
            if binary == "allianced":
                signing = listen.get("ALLIANCED_SIGNING_KEY")
                signing_secret = secret_file(signing)
                if not signing_secret:
                    fail(
                        f"{where}: ALLIANCED_SIGNING_KEY should name the key file of a mounted Secret, found {signing!r}: "
                        "without it each pod makes a key of its own in its data directory, which no [[signing_key]] lists"
                    )
                elif signing_secret == tls_secret:
                    fail(f"{where}: the signing key should be a Secret of its own, not the TLS Secret {tls_secret}")
                else:
                    signing_mount = next(m for m in mounts if signing.startswith(m + "/"))
                    if not next((m for m in container.get("volumeMounts", []) if m["mountPath"] == signing_mount), {}).get("readOnly"):
                        fail(f"{where}: the signing key's Secret should be mounted readOnly")
            if binary == "allianced" and listen.get("ALLIANCED_ADVERTISE") != "$(POD_IP):50051":
                fail(f"{where}: ALLIANCED_ADVERTISE should be $(POD_IP):50051")
            if binary == "alliance-simulation":
                target = listen.get("ALLIANCE_SIMULATION_COMMANDS", "")
                if not target.startswith("https://"):
                    fail(f"{where}: ALLIANCE_SIMULATION_COMMANDS {target!r} should be https://")
                service = target.removeprefix("https://").split(":")[0]
                if service not in by_kind.get("Service", {}):
                    fail(f"{where}: ALLIANCE_SIMULATION_COMMANDS {target!r} names no Service")
        selector = deployment["spec"]["selector"]["matchLabels"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        if any(pod_labels.get(k) != v for k, v in selector.items()):
            fail(f"{name}: selector does not match the pod labels")
        pdbs = [p for p in by_kind.get("PodDisruptionBudget", {}).values() if p["spec"]["selector"]["matchLabels"] == selector]
        if not pdbs:
            fail(f"{name}: no PodDisruptionBudget")
        services = [s for s in by_kind.get("Service", {}).values() if s["spec"].get("selector") == selector]
        if not services:
            fail(f"{name}: no Service")
        port_names = {p.get("name") for c in spec["containers"] for p in c.get("ports", [])}
        for service in services:
            for port in service["spec"]["ports"]:
                if port.get("targetPort") not in port_names:
                    fail(f"Service {service['metadata']['name']}: targetPort {port.get('targetPort')} is no container port name")
        print(f"  Deployment {name}: {deployment['spec'].get('replicas')} replica(s), image {spec['containers'][0]['image']}")
    tls_secrets = [secret for secret, _ in tls_of.values()]
    if len(set(tls_secrets)) != len(tls_secrets):
        fail(f"the servers should not share a TLS Secret (a shared key is every server's peer identity): {tls_of}")
    identity_secret = next(
        (s for s in secrets.values() if s["metadata"]["name"].startswith("alliance-identity") and "identity.toml" in s.get("data", {})),
        None,
    )
    if identity_secret is not None:
        files = {key: base64.b64decode(value).decode(errors="replace") for key, value in identity_secret.get("data", {}).items()}
        check_identity(files, tls_of)
    topics = by_kind.get("KafkaTopic", {})
    if len(topics) != 1:
        fail(f"expected one KafkaTopic, found {len(topics)}")
    for name, topic in topics.items():
        spec = topic["spec"]
        config = spec.get("config", {})
        expected = {"partitions": 8, "replicas": 3}
        for key, value in expected.items():
            if spec.get(key) != value:
                fail(f"KafkaTopic {name}: {key} should be {value}")
        for key, value in {"min.insync.replicas": 2, "retention.ms": -1, "retention.bytes": -1}.items():
            if config.get(key) != value:
                fail(f"KafkaTopic {name}: {key} should be {value}")
        if "strimzi.io/cluster" not in topic["metadata"].get("labels", {}):
            fail(f"KafkaTopic {name}: no strimzi.io/cluster label")
        topic_setting = next(
            (cm["data"]["KAFKA_TOPIC"] for cm in configmaps.values() if "KAFKA_TOPIC" in cm.get("data", {})), None
        )
        if spec.get("topicName") != topic_setting:
            fail(f"KafkaTopic {name}: topicName {spec.get('topicName')} differs from KAFKA_TOPIC {topic_setting}")
        print(f"  KafkaTopic {name}: {topic['apiVersion']} {spec.get('topicName')} partitions {spec.get('partitions')} replicas {spec.get('replicas')}")
    if topics:
        topic = next(iter(topics.values()))
        check_kafka_users(by_kind.get("KafkaUser", {}), kafka_users, topic["spec"].get("topicName"), topic["metadata"].get("labels", {}).get("strimzi.io/cluster"))
    return done("rendered manifests")


def kafka_client(where: str, binary: str, env: list, secret_file, mounts: dict, volumes: dict) -> tuple[str, str, tuple[str, str] | None] | None:
    """A server's Kafka client settings: SASL_SSL, the broker's certificate checked against a
    mounted CA, a user, and a password only as $(VAR) of a variable from a Secret defined before
    (Kubernetes expands only those). Returns the user and the Secret of its password."""
    var = KAFKA_CLIENT_ENV[binary]
    index = next((i for i, e in enumerate(env) if e["name"] == var), None)
    if index is None or not isinstance(env[index].get("value"), str):
        fail(f"{where}: no {var}: the server would reach Kafka in plaintext, unauthenticated (set security.protocol=sasl_ssl and the SASL settings)")
        return None
    for other in (e["name"] for e in env):
        if other.endswith("_KAFKA_CLIENT_FILE"):
            fail(f"{where}: {other}: give the Kafka settings in {var}, where they can be checked")
    settings: dict[str, str] = {}
    for item in env[index]["value"].split(","):
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"{where}: {var}: a setting is not KEY=VALUE")
            continue
        settings[key.strip()] = value.strip()
    protocol = settings.get("security.protocol", "plaintext (the default)")
    if protocol.lower() != "sasl_ssl":
        fail(f"{where}: {var}: security.protocol should be sasl_ssl, found {protocol}")
    if settings.get("sasl.mechanism", "").upper() not in SASL_MECHANISMS:
        fail(f"{where}: {var}: sasl.mechanism should be one of {sorted(SASL_MECHANISMS)}, found {settings.get('sasl.mechanism')!r}")
    for key, value in [("ssl.endpoint.identification.algorithm", "none"), ("enable.ssl.certificate.verification", "false")]:
        if settings.get(key, "").lower() == value:
            fail(f"{where}: {var}: {key}={value} accepts any broker")
    user = settings.get("sasl.username")
    if not user:
        fail(f"{where}: {var}: no sasl.username")
    password = re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", settings.get("sasl.password", ""))
    from_secret = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in env[:index] if "secretKeyRef" in e.get("valueFrom", {})
    }
    password_secret = None
    if password is None or password.group(1) not in from_secret:
        fail(f"{where}: {var}: sasl.password should be $(VAR) of a variable defined before it from a Secret (secretKeyRef), never a value in the manifest")
    else:
        ref = from_secret[password.group(1)]
        password_secret = (ref.get("name"), ref.get("key"))
    ca = settings.get("ssl.ca.location")
    mount = next((m for m in mounts if isinstance(ca, str) and ca.startswith(m + "/")), None)
    source = volumes.get(mounts.get(mount), {}) if mount else {}
    if "secret" not in source and "configMap" not in source:
        fail(f"{where}: {var}: ssl.ca.location should be a file of a mounted Secret or ConfigMap (the broker's CA), found {ca!r}")
    elif secret_file(ca) is not None and secret_file(ca) == secret_file(next((e.get("value") for e in env if e["name"] == "ALLIANCE_TLS_CERT"), None)):
        fail(f"{where}: {var}: ssl.ca.location is in the server's TLS Secret: the broker's CA is the Kafka cluster's")
    if user is None:
        return None
    print(f"  {where}: Kafka over {protocol} as {user} ({settings.get('sasl.mechanism')}), CA {ca}")
    return (user, settings.get("sasl.mechanism", "").upper(), password_secret)


def acls(user: dict) -> set[tuple[str, str, str, str]]:
    """A KafkaUser's allowed ACLs: (resource type, name, pattern type, operation)."""
    found = set()
    for acl in user.get("spec", {}).get("authorization", {}).get("acls", []):
        if acl.get("type", "allow") != "allow":
            continue
        resource = acl.get("resource", {})
        kind = resource.get("type")
        name = "" if kind == "cluster" else resource.get("name", "")
        pattern = "" if kind == "cluster" else resource.get("patternType", "literal")
        for operation in acl.get("operations", []) + ([acl["operation"]] if "operation" in acl else []):
            found.add((kind, name, pattern, operation))
    return found


def check_kafka_users(users: dict, kafka_users: dict, topic: str | None, cluster: str | None) -> None:
    """The Strimzi KafkaUser of each server's principal: authenticated as its settings say, its
    password the Secret the User Operator makes for it, and the ACLs docs/configuration.md gives
    it: allianced the writers', the read-model replicas the readers' and no more (a group prefix
    covering the writers' group would let a replica claim partitions there)."""
    prefix = f"alliance-commands.{topic}"
    writer = {
        ("topic", topic, "literal", "Describe"), ("topic", topic, "literal", "Read"), ("topic", topic, "literal", "Write"),
        ("group", prefix, "prefix", "Read"),
        ("transactionalId", prefix, "prefix", "Describe"), ("transactionalId", prefix, "prefix", "Write"),
        ("cluster", "", "", "IdempotentWrite"),
    }
    reader = {("topic", topic, "literal", "Describe"), ("topic", topic, "literal", "Read"), ("group", f"{prefix}-readers", "literal", "Read")}
    for deployment, principal in kafka_users.items():
        if principal is None:
            continue
        name, mechanism, password_secret = principal
        user = users.get(name)
        if user is None:
            fail(f"{deployment}: its Kafka user {name} is no KafkaUser")
            continue
        if user["metadata"].get("labels", {}).get("strimzi.io/cluster") != cluster:
            fail(f"KafkaUser {name}: strimzi.io/cluster should be {cluster}, the KafkaTopic's")
        authentication = user.get("spec", {}).get("authentication", {}).get("type")
        if STRIMZI_AUTHENTICATION.get(mechanism) != authentication:
            fail(f"KafkaUser {name}: authentication {authentication} does not give {deployment}'s sasl.mechanism {mechanism}")
        if password_secret is not None and password_secret != (name, "password"):
            fail(f"{deployment}: the Kafka password should be key password of the Secret {name} (the User Operator's), found {password_secret}")
        if user.get("spec", {}).get("authorization", {}).get("type") != "simple":
            fail(f"KafkaUser {name}: authorization should be simple (ACLs)")
        granted = acls(user)
        wanted = writer if deployment == "allianced" else reader
        missing = wanted - granted
        if missing:
            fail(f"KafkaUser {name}: ACLs missing for {deployment}: {sorted(missing)}")
        if deployment != "allianced" and granted - reader:
            fail(f"KafkaUser {name}: a read-model replica's principal should have only the readers' ACLs, also has {sorted(granted - reader)}")
        print(f"  KafkaUser {name}: {authentication}, {len(granted)} ACL(s) ({'writer' if deployment == 'allianced' else 'reader'})")


def check_identity(files: dict[str, str], tls_of: dict[str, tuple[str | None, str | None]]) -> None:
    """A rendered identity configuration (the files of its Secret): the allianced instances and
    alliance-simulation are [[peer]]s by the names their certificates carry, alliance-projection
    (which calls no server) is not, the calls between servers use TLS that proves allianced's
    name (an instance is reached at its pod IP, in no certificate) with the servers' own
    certificates, and the writers' key is a [[signing_key]] whose file is in the Secret."""
    identity = tomllib.loads(files["identity.toml"])
    signing = identity.get("signing_key", [])
    if not signing:
        fail("identity configuration: no [[signing_key]]: no writer's signature would be trusted")
    for key in signing:
        path = key.get("public_key", "")
        if "/" in path or path not in files:
            fail(f"identity configuration: [[signing_key]] public_key {path!r} should be a file of the identity Secret beside identity.toml")
    for key, text in files.items():
        if "PRIVATE KEY" in text:
            fail(f"identity configuration: {key} holds a private key (the Secret is mounted by every server)")
    peers = {p.get("subject") for p in identity.get("peer", [])}
    names = {name: server_name for name, (_, server_name) in tls_of.items()}
    for name in ["allianced", "alliance-simulation"]:
        if names.get(name) and f"DNS:{names[name]}" not in peers:
            fail(f"identity configuration: [[peer]] DNS:{names[name]} missing ({name} forwards or records runs)")
    if names.get("alliance-projection") and f"DNS:{names['alliance-projection']}" in peers:
        fail("identity configuration: alliance-projection calls no server and should be no [[peer]]")
    peer_tls = identity.get("peer_tls")
    if not peer_tls:
        fail("identity configuration: no [peer_tls]: instances would forward nothing")
        return
    if peer_tls.get("domain_name") != names.get("allianced"):
        fail(f"identity configuration: [peer_tls] domain_name should be {names.get('allianced')} (forwarding reaches pod IPs)")
    files = (peer_tls.get("ca"), peer_tls.get("identity", {}).get("cert_chain"), peer_tls.get("identity", {}).get("private_key"))
    if files != tuple(f"{TLS_MOUNT}/{key}" for key in ["ca.crt", "tls.crt", "tls.key"]):
        fail(f"identity configuration: [peer_tls] should use ca.crt, tls.crt and tls.key of {TLS_MOUNT}, found {files}")
    jwks = identity.get("jwt", {}).get("jwks_url", "https://")
    if not jwks.startswith("https://"):
        fail(f"identity configuration: jwks_url {jwks} is not https")
    print(f"  identity configuration: peers {sorted(peers)}, peer TLS for {peer_tls.get('domain_name')}")


# ---- token files -----------------------------------------------------------------------------

ROLES = {"edit", "adopt", "admin", "audit"}
SIDES = {"us", "rok"}


def token_file(path: Path) -> dict:
    """The shape alliance_commands::auth::TokenFile deserializes: `team` and `token` arrays."""
    data = tomllib.loads(path.read_text())
    for key in ["team", "token"]:
        if not isinstance(data.get(key), list):
            fail(f"{path}: `{key}` must be an array (of tables)")
            return {"team": [], "token": []}
    teams = {}
    for team in data["team"]:
        if not isinstance(team.get("team"), str):
            fail(f"{path}: a team without a name")
            continue
        if "side" in team and team["side"] not in SIDES:
            fail(f"{path}: team {team['team']}: side {team['side']} is not one of {sorted(SIDES)}")
        if not set(team.get("roles", ["edit"])) <= ROLES:
            fail(f"{path}: team {team['team']}: unknown role in {team['roles']}")
        teams[team["team"]] = team
    for token in data["token"]:
        for key in ["token", "team", "user"]:
            if not isinstance(token.get(key), str):
                fail(f"{path}: a token without `{key}`")
        if token.get("team") not in teams:
            fail(f"{path}: token of unknown team {token.get('team')}")
    return {"team": teams, "token": data["token"]}


def tokens(root_arg: str) -> int:
    root = Path(root_arg)
    plan = json.loads((root / "deploy/reference-plan.json").read_text())
    issued_as = {entry["as"] for entry in plan["entries"]}
    dev = token_file(root / "deploy/dev-tokens.toml")
    identity_path = root / "deploy/k8s/overlays/example/identity.toml"
    identity = {team["team"]: team for team in tomllib.loads(identity_path.read_text()).get("team", [])}
    for name, teams in [("deploy/dev-tokens.toml", dev["team"]), (str(identity_path.relative_to(root)), identity)]:
        missing = issued_as - set(teams)
        if missing:
            fail(f"{name}: the reference plan is issued as {sorted(missing)}, not in this file")
        print(f"  {name}: {len(teams)} teams")
    tomllib.loads((root / "deploy/simulation-model.toml").read_text())
    return done("token files")


# ---- otel ------------------------------------------------------------------------------------


def otel_variant(src: str, dest: str) -> int:
    lines = Path(src).read_text().splitlines()
    out, inside, exporters = [], False, []
    for line in lines:
        if "BEGIN optional exporter" in line:
            inside = True
            continue
        if "END optional exporter" in line:
            inside = False
            continue
        if inside:
            uncommented = re.sub(r"^(\s*)# ?", r"\1", line)
            match = re.match(r"^  (\S+):\s*$", uncommented)
            if match:
                exporters.append(match.group(1))
            out.append(uncommented)
        else:
            out.append(line)
    config = yaml.safe_load("\n".join(out) + "\n")
    if not exporters:
        print("no optional exporter block found")
        return 1
    config["service"]["pipelines"]["traces"]["exporters"].extend(exporters)
    Path(dest).write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"optional exporter(s) {', '.join(exporters)} enabled in {dest}")
    return 0


def main(argv: list[str]) -> int:
    commands = {
        "k8s-schemas": (k8s_schemas, 2),
        "crd-schemas": (crd_schemas, 2),
        "build-context": (build_context, 1),
        "compose": (compose, 2),
        "k8s": (k8s, 2),
        "tokens": (tokens, 1),
        "otel-variant": (otel_variant, 2),
    }
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__)
        return 2
    function, _ = commands[argv[1]]
    return function(*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
