from celery import shared_task
from django.utils import timezone


@shared_task
def purge_idempotency_records(**kwargs) -> int:
    from core.idempotency import purge_idempotency_records as purge

    return purge(now=timezone.now())
