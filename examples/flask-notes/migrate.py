"""The release command (`release: python3 migrate.py`): creates the schema if it is missing.

An advisory lock held for the transaction serialises concurrent runs: two
`CREATE TABLE IF NOT EXISTS` racing each other can otherwise both pass the
check and one fail on the catalogue's unique index.
"""

import os
import sys
import time
from contextlib import closing

import psycopg2

LOCK_KEY = 7301914022  # any constant unique to this app's migrations
RETRY_DELAYS_S = (0.5, 1, 2, 4)
SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  body text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
  created_at timestamptz NOT NULL DEFAULT now()
)
"""


def migrate():
    with closing(psycopg2.connect(os.environ.get("DATABASE_URL", ""), connect_timeout=10)) as conn:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            cur.execute(SCHEMA)


def main():
    for attempt in range(len(RETRY_DELAYS_S) + 1):
        try:
            migrate()
            print("schema up to date", flush=True)
            return 0
        except psycopg2.OperationalError as error:
            # The whole run is idempotent, so a run cut by a failover is simply repeated.
            if attempt == len(RETRY_DELAYS_S):
                print(f"migrate: {error}", file=sys.stderr, flush=True)
                return 1
            print(f"database unavailable ({str(error).strip()}); retrying", flush=True)
            time.sleep(RETRY_DELAYS_S[attempt])
    return 1


if __name__ == "__main__":
    sys.exit(main())
