"""What the tests, ``scripts/soak.py`` and ``bench/`` share, written once: processes,
services (a PostgreSQL database of one's own, a run's Redis keys), HTML parsing and
rows made straight in the database."""
