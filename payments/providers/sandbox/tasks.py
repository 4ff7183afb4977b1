from celery import shared_task


class DeliveryFailed(Exception):
    pass


@shared_task(bind=True, max_retries=8, acks_late=True)
def deliver_sandbox_event(self, *, event_pk: int, **kwargs) -> None:
    """The sandbox gateway delivering one signed event, retried with backoff like a real gateway."""
    from django.conf import settings

    from payments.providers.sandbox.gateway import deliver

    if deliver(event_pk):
        return
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # In-process (no broker) a retry would block the buyer's request; the beat task and the return
        # page's status check cover a missed delivery.
        return
    raise self.retry(countdown=min(2**self.request.retries * 5, 600))


@shared_task
def redeliver_sandbox_events(**kwargs) -> int:
    from datetime import timedelta

    from django.utils import timezone

    from payments.providers.sandbox.models import SandboxEvent

    cutoff = timezone.now() - timedelta(minutes=1)
    pending = SandboxEvent.objects.filter(delivered_at__isnull=True, attempts__lt=20, created_at__lt=cutoff)
    count = 0
    for pk in pending.values_list("pk", flat=True)[:200]:
        deliver_sandbox_event.delay(event_pk=pk)
        count += 1
    return count
