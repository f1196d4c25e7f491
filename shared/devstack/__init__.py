"""Development stack: real PostgreSQL and a Kafka-protocol broker started from wheels (no install)."""
