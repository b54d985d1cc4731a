"""Permission-based email: subscribers and consent, suppression, signed tokens, the per-recipient ledger and fan-out."""
