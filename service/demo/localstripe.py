"""localstripe, the stateful Stripe emulator in the dev extras, run as a child process on a loopback port.

The tests and `staypulse demo` both use it. Webhook endpoints registered with it receive the events its
PaymentIntents produce, signed with Stripe's real scheme one second after the change, as Stripe would post them.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx

START_TIMEOUT_S = 60.0
# The events StayPulse acts on (service.payments.webhooks); localstripe would otherwise post every event it makes.
PAYMENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled")


def installed() -> bool:
    return importlib.util.find_spec("localstripe") is not None


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_localstripe(start_timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """localstripe on a free loopback port, answering; yields its base URL and stops it on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        # --from-scratch: localstripe otherwise loads /tmp/localstripe.pickle, shared with every other run.
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: a Ctrl-C in the terminal stops our process, which then stops localstripe last.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"localstripe exited with {process.returncode}")
            try:
                httpx.get(f"{url}/v1/payment_intents", auth=("sk_test_probe", ""), timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def register_webhook(
    localstripe_url: str, name: str, endpoint_url: str, secret: str, events: Sequence[str] = PAYMENT_EVENTS
) -> None:
    """Have localstripe post `events` to `endpoint_url`, signed with `secret` (localstripe's own configuration
    route, not a Stripe API; registering `name` again replaces it, and no events silences it)."""
    response = httpx.post(
        f"{localstripe_url}/_config/webhooks/{name}",
        json={"url": endpoint_url, "secret": secret, "events": list(events)},
        timeout=10,
    )
    response.raise_for_status()
