"""Alert rules checked, and proactive rules run, by `touchlens serve`. Alerts: every `[alerts] check_seconds`
when the data changed (an upload, a live commit, a survey answer), and every five minutes regardless, for case
ages and the end of quiet hours. Proactive rules: every `[proactive] check_seconds` while a webhook or the queue
is set."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from touchlens.web.collect import live_writer
from touchlens.web.state import WebState

REGARDLESS_SECONDS = 300
log = logging.getLogger("touchlens.alerts")


def watch_alerts(web: WebState) -> threading.Event:
    """Start the checks on a thread of their own; set the event returned to stop them."""
    stop = threading.Event()
    every = web.ws.settings.alerts.check_seconds

    def loop() -> None:
        seen: tuple[Any, ...] | None = None
        last = 0.0
        while not stop.wait(every):
            try:
                version = web.data_version()
                if (version != seen or time.monotonic() - last >= REGARDLESS_SECONDS) and web.ws.alerts.list():
                    seen, last = version, time.monotonic()
                    web.ws.alerts.check()
            except Exception:  # a failing check must not end the loop; logged with its traceback
                log.exception("alert check failed")

    threading.Thread(target=loop, name="touchlens-alerts", daemon=True).start()
    return stop


def run_proactive(web: WebState) -> threading.Event:
    """Run the map's proactive rules every `[proactive] check_seconds` while a webhook or the queue is set; set
    the event returned to stop."""
    stop = threading.Event()
    every = web.ws.settings.proactive.check_seconds

    def loop() -> None:
        while not stop.wait(every):
            try:
                proactive = web.ws.settings.proactive
                if (proactive.webhook or proactive.queue) and web.ws.map_or_empty().proactive:
                    web.ws.contacts.run(writer=lambda work: live_writer(web).call(work).result())
            except Exception:  # a failing run must not end the loop; logged with its traceback
                log.exception("proactive run failed")

    threading.Thread(target=loop, name="touchlens-proactive", daemon=True).start()
    return stop
