"""Runs moto's S3 (and IAM) on 127.0.0.1 for onc-pipe's integration tests (tests/it/s3.rs).

Started by `MotoServer` with the venv's python; prints one JSON line on stdout once the server
answers and enforces authentication:

    {"port": P, "access_key_id": "AKIA...", "secret_access_key": "..."}

Why each step:
- moto accepts any credentials by default. Authentication is on once its request counter has
  reached INITIAL_NO_AUTH_ACTION_COUNT; the count is reset, and the threshold set, through the
  server's own `/moto-api/reset-auth`. Before that, with auth still off, an IAM user is created
  through moto's IAM API with an inline policy allowing s3:* and an access key: from then on
  only that key, signed with its secret, is accepted (unknown key: 403 InvalidAccessKeyId, wrong
  secret: 403 SignatureDoesNotMatch, no signature: 403).
- Port 0: the OS picks a free port, so parallel test processes never collide.
- `/__onc_stats` (answered here, before moto sees it) counts the requests made to moto after
  start-up, for tests that check how many requests a run made.
- The server exits when its stdin closes, so it dies with the test process even when that
  process is killed without running its destructors.
"""

import json
import logging
import os
import sys
import threading
import urllib.request

# Authentication is switched on explicitly below, once the harness's IAM user exists.
os.environ.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)

import boto3  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

STATS_PATH = "/__onc_stats"
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)
USER = "onc-pipe-tests"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


class Counting:
    """WSGI middleware: counts requests to moto and answers the stats path itself."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.counts = {}

    def reset(self):
        with self.lock:
            self.counts = {}

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == STATS_PATH:
            with self.lock:
                counts = dict(self.counts)
            body = json.dumps({"total": sum(counts.values()), "by_method": counts}).encode()
            # A length, not chunks: the Rust side reads this with a plain HTTP/1.0 GET.
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        path = environ.get("PATH_INFO", "")
        signed = "HTTP_AUTHORIZATION" in environ or "X-Amz-Credential" in environ.get(
            "QUERY_STRING", ""
        )
        # moto's own control API (/moto-api/) is unsigned by design.
        if not signed and not path.startswith("/moto-api/"):
            # moto's check reads the Authorization header unconditionally and answers an
            # unsigned request with a 500; S3 answers 403 AccessDenied.
            start_response(
                "403 Forbidden",
                [
                    ("Content-Type", "application/xml"),
                    ("Content-Length", str(len(ACCESS_DENIED))),
                ],
            )
            return [ACCESS_DENIED]
        method = environ.get("REQUEST_METHOD", "?")
        with self.lock:
            self.counts[method] = self.counts.get(method, 0) + 1
        return self.app(environ, start_response)


def main():
    # Request lines would only fill the log; warnings and tracebacks still go to stderr.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    app = Counting(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
    )
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{port}"

    # Auth is still off: any credentials do for creating the user.
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName=USER)
    iam.put_user_policy(
        UserName=USER, PolicyName="s3-all", PolicyDocument=json.dumps(POLICY)
    )
    key = iam.create_access_key(UserName=USER)["AccessKey"]

    # Threshold 0: every request from now on is checked.
    urllib.request.urlopen(
        urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            # Not a form: moto reads the raw body, which Flask leaves empty for form posts.
            headers={"Content-Type": "text/plain"},
        )
    ).read()
    app.reset()

    print(
        json.dumps(
            {
                "port": port,
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
            }
        ),
        flush=True,
    )
    # Serve until the parent closes our stdin (or kills us).
    sys.stdin.read()


if __name__ == "__main__":
    main()
