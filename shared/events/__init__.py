"""Integration events: envelope, versioned contracts, outbox (producing) and inbox (consuming)."""
