"""Payee statements: per payout and per month, from ledger entries only (`figures`), issued once with a PDF and
e-mailed to the payee (`issuing`, `pdf`, `tasks`)."""
