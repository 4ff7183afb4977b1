"""Writes for orders and payments. Import from the submodules: orders, checkout, fulfilment."""
