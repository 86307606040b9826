"""Notes: a tiny Flask app on PostgreSQL, the Python example of hyper_edge.

Environment (set by hyper_edge): HOST and PORT to listen on, DATABASE_URL (or
the PG* variables) of the postgres addon, HOX_APP_VERSION for the footer.

Flask and psycopg2 come from Debian (python3-flask, python3-psycopg2): the
platform's virtualenv sees the system site packages, so nothing is installed.

Each request opens its own short connection. That costs a few milliseconds and
buys simplicity: when the database router cuts every session (a failover),
there is no pool of dead connections to weed out. Reads are retried after a
connection error; a write only when the connection could not even be opened
(otherwise it may have committed, and a retry could duplicate the note).
"""

import os
import signal
import sys
import threading
import time
from contextlib import closing

import psycopg2
from flask import Flask, redirect, render_template_string, request
from werkzeug.serving import WSGIRequestHandler, make_server

DATABASE_URL = os.environ.get("DATABASE_URL", "")  # "" lets libpq read PGHOST, PGPORT, ...
VERSION = os.environ.get("HOX_APP_VERSION", "dev")
MAX_NOTE_LENGTH = 2000
RETRY_DELAYS_S = (0.1, 0.3, 0.9)
# The platform sends SIGTERM and waits 10 s; requests still running after this are abandoned.
HARD_EXIT_S = 9.0

app = Flask(__name__)


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now; the request may be tried again later."""


def run(sql, params=(), write=False):
    """Runs one statement in its own transaction; returns its rows (None for statements without)."""
    for attempt in range(len(RETRY_DELAYS_S) + 1):
        connected = False
        try:
            with closing(
                psycopg2.connect(DATABASE_URL, connect_timeout=5, application_name="hox-example-notes")
            ) as conn:
                connected = True
                with conn, conn.cursor() as cur:  # `with conn`: commit, or roll back on error
                    cur.execute(sql, params)
                    return cur.fetchall() if cur.description else None
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
            if attempt == len(RETRY_DELAYS_S) or (write and connected):
                raise DatabaseUnavailable(str(error).strip()) from error
            time.sleep(RETRY_DELAYS_S[attempt])
    raise AssertionError("unreachable")


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Notes</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1d2430; }
  textarea { width: 100%; min-height: 5rem; font: inherit; }
  .error { color: #b3261e; }
  li { margin: .4rem 0; white-space: pre-wrap; }
  small, footer { color: #6b7585; }
</style>
</head>
<body>
<h1>Notes</h1>
{% if message %}<p class="error" role="alert">{{ message }}</p>{% endif %}
<form method="post" action="/notes">
  <label for="body">New note</label>
  <textarea id="body" name="body" maxlength="{{ max_length }}">{{ draft }}</textarea>
  <p><button type="submit">Add</button></p>
</form>
<ul>
{% for note in notes %}<li class="note">{{ note[1] }} <small>{{ note[2].strftime("%Y-%m-%d %H:%M") }}</small></li>
{% else %}<li>No notes yet.</li>
{% endfor %}
</ul>
<footer>HyperOpenX example notes · version <span class="version">{{ version }}</span></footer>
</body>
</html>
"""


def render(status, message="", draft=""):
    notes = [] if status == 503 else run("SELECT id, body, created_at FROM notes ORDER BY id DESC LIMIT 100")
    html = render_template_string(
        PAGE, notes=notes, message=message, draft=draft, version=VERSION, max_length=MAX_NOTE_LENGTH
    )
    return html, status


@app.get("/")
def index():
    return render(200)


@app.post("/notes")
def add_note():
    body = request.form.get("body", "").strip()
    if not body:
        return render(422, "Note is required.", body)
    if len(body) > MAX_NOTE_LENGTH:
        return render(422, f"Note must be at most {MAX_NOTE_LENGTH} characters.", body)
    run("INSERT INTO notes (body) VALUES (%s)", (body,), write=True)
    return redirect("/", code=303)


@app.get("/healthz")
def healthz():
    try:
        run("SELECT 1")
    except DatabaseUnavailable:
        return "database unavailable\n", 503, {"Content-Type": "text/plain"}
    return "ok\n", 200, {"Content-Type": "text/plain"}


@app.errorhandler(DatabaseUnavailable)
def database_unavailable(error):
    print(f"503: {error}", file=sys.stderr, flush=True)
    return render(503, "database unavailable, try again")


class RequestHandler(WSGIRequestHandler):
    # One request per connection: an idle keep-alive connection would hold a thread, and shutdown waits for threads.
    protocol_version = "HTTP/1.0"
    # A client that stalls mid-request cannot hold up shutdown for long.
    timeout = 30


def main():
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    server = make_server(host, port, app, threaded=True, request_handler=RequestHandler)
    # Track request threads so that server_close() waits for the requests in flight.
    server.daemon_threads = False
    server.block_on_close = True

    def stop(signum, _frame):
        print(f"{signal.Signals(signum).name}: no new connections; finishing requests in flight", flush=True)
        hard_exit = threading.Timer(HARD_EXIT_S, lambda: os._exit(1))
        hard_exit.daemon = True
        hard_exit.start()
        # shutdown() waits for serve_forever() to return, which runs in this (the main) thread: call it from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"notes {VERSION} listening on http://{host}:{server.server_port}", flush=True)
    server.serve_forever()
    server.server_close()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
