"""Validates deploy/compose.yaml offline, as `docker compose config` would, without a Docker engine.

* every `${VAR}`, `${VAR:?message}` and `${VAR:-default}` is well formed (Compose's interpolation syntax), and is
  interpolated with placeholder values before validation;
* the result validates against the Compose Specification's JSON Schema (vendored, draft 7);
* every `depends_on` names a service of the file, every service has an image or a build, every named volume a
  service mounts is declared, and every executable a service runs is one the image installs (deploy/Dockerfile).
Usage: python check_compose.py deploy/compose.yaml deploy/tools/schemas/compose-spec.json deploy/Dockerfile
"""
import json
import re
import sys

import jsonschema
import yaml

VARIABLE = re.compile(r"\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$\$")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def interpolate(value, problems, where):
    if isinstance(value, dict):
        return {k: interpolate(v, problems, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, problems, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        body = match.group(1) if match.group(1) is not None else match.group(2)
        name = re.split(r":?[?\-+]", body, maxsplit=1)[0]
        if not NAME.match(name):
            problems.append(f"{where}: malformed interpolation ${{{body}}}")
        return "placeholder-value-for-" + name.lower()

    return VARIABLE.sub(replace, value)


def main(compose_path, schema_path, dockerfile_path):
    with open(compose_path) as f:
        document = yaml.safe_load(f)
    with open(schema_path) as f:
        schema = json.load(f)
    with open(dockerfile_path) as f:
        dockerfile = f.read()
    problems = []
    document = interpolate(document, problems, "compose")
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
        problems.append("/".join(str(p) for p in error.path) + ": " + error.message)
    services = document.get("services", {})
    volumes = set((document.get("volumes") or {}).keys())
    # The build stage copies the executables named by its `for exe in ...; do` loop into /usr/local/bin.
    loop = re.search(r"for exe in ([^;]+);", dockerfile)
    installed = set(loop.group(1).split()) if loop else set()
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"services.{name}: neither image nor build")
        depends = service.get("depends_on", [])
        for other in (depends.keys() if isinstance(depends, dict) else depends):
            if other not in services:
                problems.append(f"services.{name}.depends_on: no service named {other}")
        for mount in service.get("volumes", []):
            source = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
            if source and not source.startswith((".", "/", "~")) and source not in volumes:
                problems.append(f"services.{name}.volumes: volume {source} is not declared")
        command = service.get("command")
        if isinstance(command, list) and command and command[0].startswith("fleetadapt"):
            if command[0] not in installed:
                problems.append(f"services.{name}.command: {command[0]} is not installed by the Dockerfile")
    if problems:
        for p in problems:
            print(f"{compose_path}: {p}")
        sys.exit(1)
    print(f"{compose_path}: {len(services)} services valid against the Compose Specification")


if __name__ == "__main__":
    main(*sys.argv[1:4])
