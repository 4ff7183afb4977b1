"""The Celery app and the beat schedule (the one place periodic work is declared)."""

import os
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Queues: webhooks (inbox processing), payouts, documents (PDF rendering, recycled workers), default.
app.conf.task_routes = {
    "payments.tasks.process_webhook_event": {"queue": "webhooks"},
    "payments.tasks.resend_stuck_webhook_events": {"queue": "webhooks"},
    "payments.tasks.retry_failed_webhook_events": {"queue": "webhooks"},
    "invoicing.tasks.*": {"queue": "documents"},
    "commissions.statements.tasks.*": {"queue": "documents"},
    "commissions.tasks.execute_payout": {"queue": "payouts"},
    "*": {"queue": "default"},
}
app.conf.beat_schedule = {
    "expire-stale-orders": {"task": "payments.tasks.expire_stale_orders", "schedule": timedelta(minutes=1)},
    "resend-stuck-webhook-events": {
        "task": "payments.tasks.resend_stuck_webhook_events",
        "schedule": timedelta(minutes=1),
    },
    "retry-failed-webhook-events": {
        "task": "payments.tasks.retry_failed_webhook_events",
        "schedule": timedelta(minutes=1),
    },
    "backfill-webhook-events": {"task": "payments.tasks.backfill_webhook_events", "schedule": timedelta(hours=1)},
    "resend-stuck-refunds": {"task": "refunds.tasks.resend_stuck_refunds", "schedule": timedelta(minutes=5)},
    "expire-store-credits": {"task": "refunds.tasks.expire_store_credits", "schedule": timedelta(hours=1)},
    "sync-stale-payments": {"task": "payments.tasks.sync_stale_payments", "schedule": timedelta(minutes=5)},
    "watch-authorizations": {"task": "payments.tasks.watch_authorizations", "schedule": timedelta(hours=1)},
    "redeliver-sandbox-events": {
        "task": "payments.providers.sandbox.tasks.redeliver_sandbox_events",
        "schedule": timedelta(minutes=1),
    },
    "purge-idempotency-records": {"task": "core.tasks.purge_idempotency_records", "schedule": timedelta(hours=1)},
    "nightly-ledger-check": {"task": "ledger.tasks.nightly_ledger_check", "schedule": crontab(hour=2, minute=15)},
    "issue-missing-documents": {"task": "invoicing.tasks.issue_missing_documents", "schedule": timedelta(minutes=10)},
    "release-due-funds": {"task": "commissions.tasks.release_due_funds", "schedule": timedelta(minutes=15)},
    "scheduled-payout-runs": {
        "task": "commissions.tasks.start_scheduled_payout_runs",
        "schedule": crontab(hour=6, minute=0),
    },
    "monthly-payee-statements": {
        "task": "commissions.statements.tasks.issue_monthly_statements",
        "schedule": crontab(day_of_month=1, hour=4, minute=0),
    },
    "issue-missing-payout-statements": {
        "task": "commissions.statements.tasks.issue_missing_payout_statements",
        "schedule": timedelta(hours=1),
    },
    "monthly-commission-invoices": {
        "task": "invoicing.tasks.issue_monthly_commission_invoices",
        "schedule": crontab(day_of_month=1, hour=3, minute=30),
    },
    "retry-failed-recurring-charges": {
        "task": "recurring.tasks.retry_failed_recurring_charges",
        "schedule": timedelta(hours=1),
    },
}
