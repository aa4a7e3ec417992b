"""Sending alerts: a webhook (Slack-compatible JSON: a `text` field, plus the alerts as data) and e-mail over
SMTP. Each send says what happened as text for the alert's delivery record; a failure is recorded and logged,
never raised, so one broken channel does not stop the others or the next check."""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any

from touchlens.store.settings import AlertSettings

log = logging.getLogger("touchlens.alerts")


def webhook(url: str, text: str, alerts: list[dict[str, Any]], timeout: float) -> str:
    """POST the message; 'sent' or what went wrong."""
    if not url.lower().startswith(("https://", "http://")):
        return "not sent: a webhook is an http(s) URL"
    body = json.dumps({"text": text, "alerts": alerts}, default=str).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (http(s) checked above)
            return "sent" if 200 <= answer.status < 300 else f"failed: HTTP {answer.status}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("alert webhook failed: %s", exc)
        return f"failed: {exc}"


def email(to: list[str], subject: str, text: str, settings: AlertSettings) -> str:
    """Send the message to every address in one e-mail; 'sent' or what went wrong."""
    if not settings.smtp_host:
        return "not sent: no [alerts] smtp_host"
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(text)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("alert e-mail failed: %s", exc)
        return f"failed: {exc}"
    return "sent"
