#!/usr/bin/python3
"""Serves app.py from this directory (or the directory given as the first
argument, e.g. seed/) with uvicorn: WEB_CONCURRENCY workers (default 2),
uvloop and httptools when installed.

BACKEND_ADDR (default 127.0.0.1:8081) must be a loopback address unless
ALLOW_PUBLIC_ADDR=1: behind Gatehouse the proxy in the same pod is this app's
only client, and anyone else reaching it could send their own X-User-ID.
"""
import ipaddress
import os
import sys


def listen_addr(allow_public: bool) -> tuple:
    raw = os.environ.get("BACKEND_ADDR", "127.0.0.1:8081")
    host, _, port = raw.rpartition(":")
    host = host.strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not port.isdigit() or not host or not (loopback or allow_public):
        sys.exit(f"todo-api: BACKEND_ADDR={raw!r}: want a loopback address like 127.0.0.1:8081 "
                 "(only the Gatehouse proxy beside it may reach this app)")
    return host, int(port)


def main() -> None:
    import uvicorn

    app_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
    host, port = listen_addr(os.environ.get("ALLOW_PUBLIC_ADDR") == "1")
    level = os.environ.get("LOG_LEVEL", "info")
    uvicorn.run("app:app", app_dir=app_dir, host=host, port=port,
                workers=int(os.environ.get("WEB_CONCURRENCY", "2")),
                log_level="warning" if level == "warn" else level,
                access_log=False, proxy_headers=False, server_header=False)


if __name__ == "__main__":
    main()
