"""Operational alerts to finance staff (an authorization about to lapse, a recurring charge given up on)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger(__name__)


def staff_recipients() -> list[str]:
    """`TOLLGATE_STAFF_EMAILS` if set, else the addresses in `ADMINS`."""
    explicit = getattr(settings, "TOLLGATE_STAFF_EMAILS", None)
    if explicit:
        return list(explicit)
    return [admin[1] if isinstance(admin, list | tuple) else str(admin) for admin in settings.ADMINS]


def email_staff(*, subject: str, body: str) -> bool:
    """Best effort: the caller's flag and audit entry stand whatever happens to the mail. False if it was not
    sent (no address configured, or the mail server refused: logged with the traceback)."""
    recipients = staff_recipients()
    if not recipients:
        logger.warning("%s (no staff e-mail configured: set ADMINS or TOLLGATE_STAFF_EMAILS)", subject)
        return False
    try:
        send_mail(subject=subject, message=body, from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=recipients)
    except Exception:  # noqa: BLE001 - any mail failure: logged, and the alert's state stays on our rows
        logger.exception("could not e-mail staff: %s", subject)
        return False
    return True
