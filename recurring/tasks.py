"""Thin tasks: load by id, call a service. Every one is safe to run twice."""

from celery import shared_task
from django.utils import timezone


@shared_task
def retry_failed_recurring_charges(**kwargs) -> dict:
    """Hourly (config/celery.py): follow charges waiting on the provider, retry the due ones, tell the provider
    about stopped recurrences it has not heard of, set up recurrences whose notification was lost."""
    from recurring.services import retry_failed_charges

    return retry_failed_charges(now=timezone.now())
