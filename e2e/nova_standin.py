"""Nova stand-in for the end-to-end stack.

Serves the few compute API calls that masakari-api and masakari-engine make for a
COMPUTE_HOST notification. These are the nova-compute service list (host registration,
disabling the service), the server list of a host and the aggregate list. The server list
is always empty, so there is nothing to evacuate. Every other request gets 404 and is
logged, so a new call shows up in the log.

Usage: nova_standin.py PORT HOST[,HOST...]
"""

import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VERSION = {
    "id": "v2.1",
    "status": "CURRENT",
    "version": "2.95",
    "min_version": "2.1",
    "updated": "2013-07-23T11:33:21Z",
    "links": [],
}


class Compute:
    """nova-compute service records, one per registered host name."""

    def __init__(self, hosts):
        self.services = {
            str(uuid.uuid5(uuid.NAMESPACE_DNS, name)): {
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                "binary": "nova-compute",
                "host": name,
                "zone": "nova",
                "status": "enabled",
                "state": "up",
                "disabled_reason": None,
                "forced_down": False,
                "updated_at": "2026-01-01T00:00:00.000000",
            }
            for name in hosts
        }

    def list_services(self, query):
        host = query.get("host", [None])[0]
        binary = query.get("binary", [None])[0]
        return [
            s
            for s in self.services.values()
            if (host is None or s["host"] == host) and (binary is None or s["binary"] == binary)
        ]


class Handler(BaseHTTPRequestHandler):
    compute = None

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("OpenStack-API-Version", "compute 2.53")
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        if path.startswith("/v2.1"):
            path = path[len("/v2.1"):]
        return path, parse_qs(parts.query)

    def do_GET(self):
        path, query = self._route()
        if path == "":
            self._send(200, {"version": VERSION} if self.path.startswith("/v2.1") else {"versions": [VERSION]})
        elif path == "/os-services":
            self._send(200, {"services": self.compute.list_services(query)})
        elif path in ("/servers/detail", "/servers"):
            self._send(200, {"servers": []})
        elif path == "/os-aggregates":
            self._send(200, {"aggregates": []})
        else:
            self.log_message("unhandled GET %s", self.path)
            self._send(404, {"itemNotFound": {"code": 404, "message": "not found"}})

    def do_PUT(self):
        path, _ = self._route()
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        service_id = path[len("/os-services/"):] if path.startswith("/os-services/") else None
        service = self.compute.services.get(service_id)
        if service is None:
            self.log_message("unhandled PUT %s", self.path)
            self._send(404, {"itemNotFound": {"code": 404, "message": "not found"}})
            return
        for key in ("status", "disabled_reason", "forced_down"):
            if key in body:
                service[key] = body[key]
        self._send(200, {"service": service})


def main():
    port = int(sys.argv[1])
    hosts = [h for h in sys.argv[2].split(",") if h]
    Handler.compute = Compute(hosts)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
