"""Helpers for e2e/stack.sh: port checks, readiness waits and provisioning over REST.

Runs with the stack's venv Python. Every request goes to 127.0.0.1 and ignores proxy
settings from the environment. Provisioning commands print shell KEY=VALUE lines.

Commands:
  port-free PORT                  exit 0 when 127.0.0.1:PORT can be bound, 1 otherwise
  free-port                       print a port that is free on 127.0.0.1
  wait-http URL SECONDS PID       wait until URL responds (status < 500) while PID lives
  keystone                        create project, user, services, endpoints, app credential
  endpoints                       point the identity, masakari and nova endpoints at the current
                                  ports
  masakari                        create the failover segment and register its hosts
  backup SRC DST                  copy an SQLite database consistently
  consumers RABBITMQCTL QUEUE     print the consumer count of QUEUE (0 when absent)
  maintenance DB true|false HOST...
                                  set on_maintenance of hosts directly in masakari's database
"""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import requests

TIMEOUT_SECONDS = 30


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"provision.py: environment variable {name} is missing")
    return value


def session():
    s = requests.Session()
    s.trust_env = False  # never send loopback traffic through a proxy
    return s


def check(response, what):
    if response.status_code >= 300:
        sys.exit(f"provision.py: {what} failed with HTTP {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else {}


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", int(port)))
        except OSError:
            return False
    return True


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # kill(0) succeeds for a zombie too, so read the process state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_http(url, seconds, pid):
    deadline = time.monotonic() + float(seconds)
    s = session()
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            sys.exit(f"provision.py: process {pid} exited before {url} responded")
        try:
            if s.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    sys.exit(f"provision.py: {url} did not respond within {seconds} s")


def admin_token(s, keystone_url):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": env("E2E_ADMIN_PASSWORD")}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    r = s.post(f"{keystone_url}/v3/auth/tokens", json=body, timeout=TIMEOUT_SECONDS)
    check(r, "admin token request")
    return r.headers["X-Subject-Token"], r.json()["token"]


def keystone():
    url = env("E2E_KEYSTONE_URL")
    s = session()
    token, body = admin_token(s, url)
    s.headers["X-Auth-Token"] = token
    admin_project_id = body["project"]["id"]

    def post(path, payload, what):
        return check(s.post(f"{url}/v3/{path}", json=payload, timeout=TIMEOUT_SECONDS), what)

    project = post("projects", {"project": {"name": "service", "domain_id": "default"}}, "project creation")["project"]
    user = post(
        "users",
        {"user": {"name": "masakari", "domain_id": "default", "password": env("E2E_MASAKARI_PASSWORD")}},
        "user creation",
    )["user"]
    roles = check(s.get(f"{url}/v3/roles", params={"name": "admin"}, timeout=TIMEOUT_SECONDS), "role lookup")
    role_id = roles["roles"][0]["id"]
    check(
        s.put(f"{url}/v3/projects/{project['id']}/users/{user['id']}/roles/{role_id}", timeout=TIMEOUT_SECONDS),
        "role assignment",
    )

    for name, kind, endpoint in (
        ("masakari", "instance-ha", env("E2E_MASAKARI_ENDPOINT")),
        ("nova", "compute", env("E2E_NOVA_ENDPOINT")),
    ):
        service = post("services", {"service": {"name": name, "type": kind}}, f"{name} service creation")["service"]
        for interface in ("public", "internal", "admin"):
            post(
                "endpoints",
                {
                    "endpoint": {
                        "service_id": service["id"],
                        "interface": interface,
                        "region_id": "RegionOne",
                        "url": endpoint,
                    }
                },
                f"{name} {interface} endpoint creation",
            )

    # An application credential belongs to the user who creates it, so log in as masakari.
    masakari = session()
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"id": user["id"], "password": env("E2E_MASAKARI_PASSWORD")}
                },
            },
            "scope": {"project": {"id": project["id"]}},
        }
    }
    r = masakari.post(f"{url}/v3/auth/tokens", json=body, timeout=TIMEOUT_SECONDS)
    check(r, "masakari token request")
    masakari.headers["X-Auth-Token"] = r.headers["X-Subject-Token"]
    cred = check(
        masakari.post(
            f"{url}/v3/users/{user['id']}/application_credentials",
            json={"application_credential": {"name": "masakari-hostmonitor-e2e"}},
            timeout=TIMEOUT_SECONDS,
        ),
        "application credential creation",
    )["application_credential"]

    print(f"ADMIN_PROJECT_ID={admin_project_id}")
    print(f"SERVICE_PROJECT_ID={project['id']}")
    print(f"MASAKARI_USER_ID={user['id']}")
    print(f"APP_CRED_ID={cred['id']}")
    print(f"APP_CRED_SECRET={cred['secret']}")


def endpoints():
    url = env("E2E_KEYSTONE_URL")
    s = session()
    token, _ = admin_token(s, url)
    s.headers["X-Auth-Token"] = token
    # keystonemiddleware in masakari-api validates tokens at the catalog's identity endpoint,
    # not at its configured auth_url, so the identity endpoints must follow the port too.
    wanted = {
        "identity": f"{url}/v3",
        "instance-ha": env("E2E_MASAKARI_ENDPOINT"),
        "compute": env("E2E_NOVA_ENDPOINT"),
    }
    services = check(s.get(f"{url}/v3/services", timeout=TIMEOUT_SECONDS), "service list")["services"]
    types = {svc["id"]: svc["type"] for svc in services}
    listed = check(s.get(f"{url}/v3/endpoints", timeout=TIMEOUT_SECONDS), "endpoint list")["endpoints"]
    for endpoint in listed:
        target = wanted.get(types.get(endpoint["service_id"]))
        if target and endpoint["url"] != target:
            check(
                s.patch(
                    f"{url}/v3/endpoints/{endpoint['id']}",
                    json={"endpoint": {"url": target}},
                    timeout=TIMEOUT_SECONDS,
                ),
                "endpoint update",
            )


def masakari():
    keystone_url = env("E2E_KEYSTONE_URL")
    s = session()
    token, _ = admin_token(s, keystone_url)
    s.headers["X-Auth-Token"] = token
    api = env("E2E_MASAKARI_URL").rstrip("/") + "/v1"
    segment = check(
        s.post(
            f"{api}/segments",
            json={
                "segment": {
                    "name": env("E2E_SEGMENT_NAME"),
                    "recovery_method": "auto",
                    "service_type": "COMPUTE",
                }
            },
            timeout=TIMEOUT_SECONDS,
        ),
        "segment creation",
    )["segment"]
    for name in env("E2E_HOSTS").split(","):
        check(
            s.post(
                f"{api}/segments/{segment['uuid']}/hosts",
                json={"host": {"name": name, "type": "COMPUTE", "control_attributes": "SSH"}},
                timeout=TIMEOUT_SECONDS,
            ),
            f"host {name} registration",
        )
    print(f"SEGMENT_UUID={segment['uuid']}")


def backup(src, dst):
    source = sqlite3.connect(src)
    target = sqlite3.connect(dst)
    with target:
        source.backup(target)
    source.close()
    target.close()


def consumers(rabbitmqctl, queue):
    out = subprocess.run(
        [rabbitmqctl, "-q", "list_queues", "name", "consumers"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == queue:
            print(fields[1])
            return
    print(0)


def maintenance(db, value, hosts):
    """Sets on_maintenance in the database, because masakari-api rejects every host update
    while any notification of the segment is new, running or error."""
    if value not in ("true", "false"):
        sys.exit(f"provision.py: maintenance value must be true or false, not {value!r}")
    connection = sqlite3.connect(db, timeout=TIMEOUT_SECONDS)
    with connection:
        marks = ",".join("?" * len(hosts))
        updated = connection.execute(
            f"UPDATE hosts SET on_maintenance = ? WHERE deleted = 0 AND name IN ({marks})",
            [1 if value == "true" else 0, *hosts],
        ).rowcount
    connection.close()
    if updated != len(hosts):
        sys.exit(f"provision.py: {len(hosts)} hosts given, {updated} found in {db}")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "port-free":
        sys.exit(0 if port_free(args[0]) else 1)
    elif command == "free-port":
        print(free_port())
    elif command == "wait-http":
        wait_http(*args)
    elif command == "keystone":
        keystone()
    elif command == "endpoints":
        endpoints()
    elif command == "masakari":
        masakari()
    elif command == "backup":
        backup(*args)
    elif command == "consumers":
        consumers(*args)
    elif command == "maintenance":
        maintenance(args[0], args[1], args[2:])
    else:
        sys.exit(f"provision.py: unknown command {command}")


if __name__ == "__main__":
    main()
