"""Checks docker-compose.yml without a Docker engine (CI has none): that it
parses, and that it says what roster's deployment needs.

usage: check_compose.py docker-compose.yml Dockerfile
"""

import re
import sys

import yaml


def fail(message):
    print(f"docker-compose.yml: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    compose_path, dockerfile_path = sys.argv[1], sys.argv[2]
    with open(compose_path, encoding="utf-8") as file:
        compose = yaml.safe_load(file)
    services = compose.get("services") or fail("no services")
    for name in ("postgres", "roster"):
        service = services.get(name) or fail(f"no service {name!r}")
        check = service.get("healthcheck") or fail(f"{name} has no healthcheck")
        if not check.get("test"):
            fail(f"{name}'s healthcheck has no test")
    roster = services["roster"]
    if roster.get("build") not in (".", {"context": "."}):
        fail("roster is not built from this repository's Dockerfile")
    depends = roster.get("depends_on") or {}
    if not isinstance(depends, dict) or depends.get("postgres", {}).get("condition") != "service_healthy":
        fail("roster must wait for a healthy postgres (depends_on: condition: service_healthy)")
    environment = roster.get("environment") or {}
    url = str(environment.get("DATABASE_URL", ""))
    if not url.startswith("postgres://") or "@postgres:" not in url:
        fail("roster's DATABASE_URL must point at the postgres service")
    if "ROSTER_JWT_SECRET" not in environment and "ROSTER_JWT_JWKS_FILE" not in environment:
        fail("roster listens on 0.0.0.0 in the image: it needs ROSTER_JWT_SECRET or ROSTER_JWT_JWKS_FILE")
    ports = [str(p) for p in roster.get("ports") or []]
    if not any(p.endswith(":50051") for p in ports):
        fail("roster's gRPC port 50051 is not published")

    with open(dockerfile_path, encoding="utf-8") as file:
        dockerfile = file.read()
    stages = re.findall(r"^FROM\s+\S+", dockerfile, re.MULTILINE)
    if len(stages) < 2:
        fail("the Dockerfile should build in one stage and run in another")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    if not users or users[-1] in ("root", "0"):
        fail("the runtime image must run as a non-root user")
    if "EXPOSE 50051" not in dockerfile:
        fail("the Dockerfile does not expose 50051")
    print("docker-compose.yml and Dockerfile: OK")


main()
