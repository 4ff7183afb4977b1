import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task
def nightly_ledger_check(**kwargs) -> bool:
    from core.audit import record_audit
    from ledger.selectors import check_ledger

    report = check_ledger()
    if not report.ok:
        logger.error(
            "LEDGER CHECK FAILED: unbalanced=%s short=%s drifted=%s not_netting=%s",
            report.unbalanced_transactions[:10],
            report.short_transactions[:10],
            report.drifted_accounts[:10],
            report.currencies_not_netting,
        )
    record_audit(
        action="ledger.check",
        actor_label="system",
        outcome="success" if report.ok else "failure",
        metadata={"transactions": report.transactions, "accounts": report.accounts},
    )
    return report.ok
