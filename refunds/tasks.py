from celery import shared_task

from payments.providers.base import ProviderOutcomeUnknown, ProviderUnavailable


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(ProviderUnavailable, ProviderOutcomeUnknown),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def execute_refund(self, *, refund_id: int, **kwargs) -> None:
    from django.utils import timezone

    from refunds.services import execute_refund as execute

    execute(refund_id=refund_id, now=timezone.now())


@shared_task
def resend_stuck_refunds(**kwargs) -> int:
    from django.utils import timezone

    from refunds.services import resend_stuck_refunds as resend

    return resend(now=timezone.now())


@shared_task
def send_store_credit_email(*, credit_id: int, **kwargs) -> bool:
    from django.utils import timezone

    from refunds.store_credit import send_store_credit_email as send

    return send(credit_id=credit_id, now=timezone.now())


@shared_task
def expire_store_credits(**kwargs) -> int:
    from django.utils import timezone

    from refunds.store_credit import expire_store_credits as expire

    return expire(now=timezone.now())


@shared_task(acks_late=True, max_retries=5, default_retry_delay=60)
def send_refund_decision_email(*, refund_id: int, **kwargs) -> bool:
    from django.utils import timezone

    from refunds.notifications import send_refund_decision_email as send

    return send(refund_id=refund_id, now=timezone.now())
