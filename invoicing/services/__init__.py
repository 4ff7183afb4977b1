"""Issuing documents: numbering, buyer invoices and credit notes, commission invoices, PDFs and e-mail."""
