#!/usr/bin/env python3
"""Checks `hookrun trigger`'s provider fixtures with the providers' own
verification libraries: each fixture is signed by `hookrun trigger
--dry-run` for a trigger of its scheme on a throwaway `hookrun serve`, and
the printed request must verify with Stripe's (`stripe`), Slack's
(`slack_sdk`) and Standard Webhooks' (`standardwebhooks`) libraries, and
with GitHub's documented check (GitHub publishes no Python library).

Usage: .venv/bin/python infra/fixtures-check.py [HOOKRUN_BIN]
(infra/test.sh runs it; default binary target/debug/hookrun)
"""
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

import slack_sdk.signature
import standardwebhooks
import stripe

KEY = "hka_fixture_check_0123456789abcdef0123456789"
BIN = sys.argv[1] if len(sys.argv) > 1 else "target/debug/hookrun"
SECRETS = {
    "github": "github-fixture-secret-0123456789",
    "stripe": "whsec_stripe_fixture_secret_0123456789",
    "slack": "8f742231b10e8888abcd99yyyzzz85a5",
    "standard-webhooks": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "hmac": "hmac-fixture-secret-0123456789",
}


def api(base, method, path, body=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read() or b"null")


def dry_run(base, trigger, fixture, secret):
    out = subprocess.run(
        [BIN, "trigger", trigger, "--fixture", fixture, "--secret", secret, "--dry-run"],
        env={**os.environ, "HOOKRUN_URL": base, "HOOKRUN_API_KEY": KEY},
        capture_output=True, text=True, check=True,
    ).stdout
    head, body = out.split("\n\n", 1)
    lines = head.splitlines()
    headers = {}
    for line in lines[1:]:
        k, v = line.split(": ", 1)
        headers[k.lower()] = v
    return headers, body.rstrip("\n").encode()


def verify(scheme, secret, headers, body):
    if scheme == "stripe":
        event = stripe.Webhook.construct_event(body, headers["stripe-signature"], secret)
        assert event["object"] == "event"
    elif scheme == "slack":
        ok = slack_sdk.signature.SignatureVerifier(secret).is_valid(
            body=body.decode(),
            timestamp=headers["x-slack-request-timestamp"],
            signature=headers["x-slack-signature"],
        )
        assert ok, "slack_sdk refused the signature"
    elif scheme == "standard-webhooks":
        standardwebhooks.Webhook(secret).verify(body, headers)
    elif scheme == "github":
        # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(want, headers["x-hub-signature-256"]), "GitHub's check failed"
    else:
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(want, headers["x-webhook-signature"]), "hmac check failed"


def main():
    data = tempfile.mkdtemp(prefix="hookrun-fixtures-")
    serve = subprocess.Popen(
        [BIN, "serve", "--addr", "127.0.0.1:0", "--data-dir", data],
        env={**os.environ, "HOOKRUN_BOOTSTRAP_ADMIN_KEY": KEY, "HOOKRUN_LOG": "warn"},
        stdout=subprocess.PIPE, text=True,
    )
    try:
        base = None
        for line in serve.stdout:
            if line.startswith("listening on "):
                base = line.split()[2]
                break
        assert base, "hookrun serve did not start"
        agent = api(base, "POST", "/api/v1/agents", {"name": "fixtures", "runner": {"type": "echo"}})
        listed = subprocess.run([BIN, "trigger", "--list-fixtures"], capture_output=True, text=True, check=True)
        names = [l.split()[0] for l in listed.stdout.splitlines() if l.strip()]
        assert len(names) >= 9, names
        for name in names:
            provider = name.split(":")[0]
            scheme = provider if provider in SECRETS else "hmac"
            trigger = api(base, "POST", "/api/v1/webhook-triggers", {
                "agent_id": agent["id"], "name": name,
                "signature": {"scheme": scheme}, "secret": SECRETS[scheme],
            })
            headers, body = dry_run(base, trigger["id"], name, SECRETS[scheme])
            verify(scheme, SECRETS[scheme], headers, body)
            print(f"{name}: verified ({scheme})")
    finally:
        serve.terminate()
        serve.wait()


if __name__ == "__main__":
    main()
