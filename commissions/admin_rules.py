"""Commission rules in the admin (with history)."""
