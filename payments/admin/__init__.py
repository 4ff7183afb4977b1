"""Orders, payments, payment links and the webhook inbox in the back office.

Orders, payments and webhook events are view only: they change through the services (cancel an order,
replay an event), each behind its own permission and written to the audit trail by the service."""

from payments.admin import links, orders, payment_admin, webhooks  # noqa: F401  (registers the admins)
