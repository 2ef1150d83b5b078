#!/usr/bin/env bash
# Manage a throw-away local Bugsink server (self-hosted, Sentry-compatible) for end-to-end tests.
#
# Usage:
#   tests/e2e/bugsink.sh start    # (re)create venv if needed, fresh state, start server; prints the DSN on stdout
#   tests/e2e/bugsink.sh stop     # stop the server (no-op if none is running)
#   tests/e2e/bugsink.sh events   # one JSON object per line: each stored event's data, plus "_issue_id"
#   tests/e2e/bugsink.sh issues   # one JSON object per line: each issue (id, event counts, type/value, grouping keys)
#   tests/e2e/bugsink.sh status   # exit 0 if the server is running
#   tests/e2e/bugsink.sh project NAME  # create project NAME if it does not exist yet; prints its DSN
#
# Typical use:   DSN=$(tests/e2e/bugsink.sh start) && ... && tests/e2e/bugsink.sh stop
#
# `start` prints exactly one line on stdout: http://KEY@127.0.0.1:PORT/PROJECT_ID
# Bugsink groups an issue by exception type and message only (never by stack) and sets an issue's crash location
# (last_frame_*) from its first event: a test that checks those from its own application uses a project of its own.
# Everything else goes to stderr; the server's own output goes to <state>/server.log.
#
# Environment:
#   BUGSINK_PORT   port to bind on 127.0.0.1 (default 8011)
#
# Layout (repo = this script's ../..):
#   <repo>/target/bugsink/venv    python virtualenv with bugsink==$BUGSINK_VERSION (kept between runs)
#   <repo>/target/bugsink/state   config, SQLite databases, ingest spool, server.log, server.pid, dsn
#                                 (wiped on every `start`)
#
# Server configuration: SNAPPEA TASK_ALWAYS_EAGER (an event is digested and stored before its POST returns),
# BUGSINK VALIDATE_ON_DIGEST = "strict" (the only event-schema validation setting Bugsink has), PHONEHOME off,
# no email, webhooks allow-list only (with an empty list), TIME_ZONE UTC. Served by gunicorn (1 worker, 4 threads).
#
# Detecting a rejected event: under "strict", a schema-invalid event is still answered with HTTP 200 {"id": ...},
# but it is NOT stored, and server.log gets a "ValidationError in digest" traceback whose last line is
# `django.core.exceptions.ValidationError: ['$.json.path: message']`. So assert, after each POST, that the event
# appears in `events` and/or that server.log has no "ValidationError in digest" and no "Internal Server Error"
# (some bad values, e.g. an unparsable timestamp string, pass the schema and then fail with HTTP 500 instead).
# Note the schema has additionalProperties=false nearly everywhere: unknown keys (top level, frames, mechanism,
# contexts of known types, ...) are rejected, e.g. the legacy top-level "message" (use "logentry") or frame "trust".
set -euo pipefail

BUGSINK_VERSION="2.6.2"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
BASE="$REPO/target/bugsink"
VENV="$BASE/venv"
STATE="$BASE/state"
PIDFILE="$STATE/server.pid"
LOGFILE="$STATE/server.log"
PORT="${BUGSINK_PORT:-8011}"

log() { printf 'bugsink.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Serialize start/stop of concurrent callers (e.g. several test binaries). The lock fd is closed for the server.
lock() {
    mkdir -p "$BASE"
    exec 9>"$BASE/.lock"
    flock 9
}

server_pid() {
    # prints the pid of a running server (from the pid file), or nothing
    [[ -f "$PIDFILE" ]] || return 0
    local pid
    pid="$(tr -dc '0-9' <"$PIDFILE")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        echo "$pid"
    fi
}

port_in_use() {
    python3 - "$PORT" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
sys.exit(0)
EOF
}

do_stop() {
    local pid i
    pid="$(server_pid)"
    if [[ -n "$pid" ]]; then
        log "stopping server (pid $pid)"
        # The server was started with setsid: it leads its own process group (gunicorn master + worker).
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "server did not exit on SIGTERM; sending SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        # wait for the rest of the group (workers) too
        for ((i = 0; i < 50; i++)); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$PIDFILE"
}

ensure_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating virtualenv $VENV"
        python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi
    local have
    have="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("bugsink"))' 2>/dev/null || true)"
    if [[ "$have" != "$BUGSINK_VERSION" ]]; then
        log "installing bugsink==$BUGSINK_VERSION into $VENV (found: ${have:-none})"
        "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "bugsink==$BUGSINK_VERSION" >&2
        rm -rf "$BASE"/migrated-db-*
    fi
}

write_config() {
    (cd "$STATE" && "$VENV/bin/bugsink-create-conf" --template local --host 127.0.0.1 --port "$PORT" \
        --output-file "$STATE/bugsink_conf.py" >&2)
    cat >>"$STATE/bugsink_conf.py" <<EOF


# ---- overrides appended by tests/e2e/bugsink.sh (crashbox end-to-end tests) ----
TIME_ZONE = "UTC"
DEBUG = False

DATABASES["default"]["NAME"] = "$STATE/db.sqlite3"
DATABASES["default"]["TEST"]["NAME"] = "$STATE/test.sqlite3"
DATABASES["snappea"]["NAME"] = "$STATE/snappea.sqlite3"

# digest (and store) each event inside the ingest request, so it is in the DB when the POST returns
SNAPPEA = {"TASK_ALWAYS_EAGER": True}

# never send mail (alerts for new issues would otherwise go to the console/SMTP)
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"

BUGSINK.update({
    "BASE_URL": "http://127.0.0.1:$PORT",  # used to build the DSN
    # schema-validate every event at digest time; invalid events are dropped ("warn" would only log)
    "VALIDATE_ON_DIGEST": "strict",
    # no contact with the internet
    "PHONEHOME": False,
    "ALERTS_WEBHOOK_OUTBOUND_MODE": "allowlist_only",
    "ALERTS_WEBHOOK_ALLOW_LIST": [],
    # keep everything inside the state dir
    "INGEST_STORE_BASE_DIR": "$STATE/ingestion",
})
EOF
}

# Consistent copy of an SQLite database (WAL included) into a new single file.
sqlite_copy() {
    python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
src = sqlite3.connect(sys.argv[1])
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()
src.close()
EOF
}

# Runs Python inside the Bugsink Django environment.
django_python() {
    (cd "$STATE" && PYTHONPATH="$STATE" DJANGO_SETTINGS_MODULE=bugsink_conf "$VENV/bin/python" "$@")
}

manage() {
    (cd "$STATE" && PYTHONPATH="$STATE" DJANGO_SETTINGS_MODULE=bugsink_conf "$VENV/bin/bugsink-manage" "$@")
}

create_objects() {
    django_python - "$STATE/dsn" <<'EOF'
import sys
import django
django.setup()

from django.contrib.auth import get_user_model
from teams.models import Team, TeamMembership, TeamRole
from projects.models import Project, ProjectMembership, ProjectRole

User = get_user_model()
user = User.objects.create_superuser(username="admin@example.com", email="admin@example.com", password="admin")
team = Team.objects.create(name="crashbox")
TeamMembership.objects.create(team=team, user=user, role=TeamRole.ADMIN, accepted=True)
project = Project.objects.create(team=team, name="crashbox-e2e")
ProjectMembership.objects.create(project=project, user=user, role=ProjectRole.ADMIN, accepted=True)

with open(sys.argv[1], "w") as f:
    f.write(project.dsn + "\n")
EOF
}

do_start() {
    [[ "$PORT" =~ ^[0-9]+$ ]] || die "BUGSINK_PORT must be a number, got '$PORT'"
    local t0=$SECONDS
    lock
    do_stop
    if port_in_use; then
        die "port $PORT on 127.0.0.1 is already in use by another process (set BUGSINK_PORT)"
    fi

    ensure_venv

    rm -rf "$STATE"
    mkdir -p -m 700 "$STATE"
    mkdir -p -m 700 "$STATE/ingestion"
    write_config

    # Migrating takes ~6 s, so freshly migrated (empty) databases are cached per bugsink version and copied in.
    local cache="$BASE/migrated-db-$BUGSINK_VERSION"
    if [[ -f "$cache/db.sqlite3" && -f "$cache/snappea.sqlite3" ]]; then
        log "copying migrated empty databases from $cache"
        sqlite_copy "$cache/db.sqlite3" "$STATE/db.sqlite3"
        sqlite_copy "$cache/snappea.sqlite3" "$STATE/snappea.sqlite3"
    else
        log "migrating databases in $STATE"
        manage migrate --noinput >"$STATE/migrate.log" 2>&1 || { cat "$STATE/migrate.log" >&2; die "migrate failed"; }
        manage migrate snappea --database=snappea --noinput >>"$STATE/migrate.log" 2>&1 ||
            { cat "$STATE/migrate.log" >&2; die "migrate snappea failed"; }
        rm -rf "$cache.tmp"
        mkdir -p "$cache.tmp"
        sqlite_copy "$STATE/db.sqlite3" "$cache.tmp/db.sqlite3"
        sqlite_copy "$STATE/snappea.sqlite3" "$cache.tmp/snappea.sqlite3"
        rm -rf "$cache"
        mv "$cache.tmp" "$cache"
    fi

    create_objects >&2 || die "creating user/team/project failed"
    local dsn
    dsn="$(head -n1 "$STATE/dsn")"
    [[ "$dsn" == http://*@127.0.0.1:"$PORT"/* ]] || die "unexpected DSN '$dsn'"

    log "starting gunicorn on 127.0.0.1:$PORT (log: $LOGFILE)"
    # setsid: own session + process group, so `stop` can kill master and workers together.
    # All fds are redirected so callers doing DSN=$(bugsink.sh start) do not wait on the server; fd 9 (lock) closed.
    (
        cd "$STATE"
        export PYTHONPATH="$STATE" DJANGO_SETTINGS_MODULE=bugsink_conf PYTHONUNBUFFERED=1
        exec setsid "$VENV/bin/gunicorn" \
            --bind "127.0.0.1:$PORT" \
            --workers 1 --threads 4 --timeout 60 --graceful-timeout 5 \
            --access-logfile - --error-logfile - --capture-output \
            --no-control-socket \
            bugsink.wsgi
    ) </dev/null >>"$LOGFILE" 2>&1 9>&- &
    local pid=$!
    echo "$pid" >"$PIDFILE"

    local i ok=""
    for ((i = 0; i < 600; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$LOGFILE" >&2 || true
            rm -f "$PIDFILE"
            die "server exited during startup (see $LOGFILE)"
        fi
        if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health/ready" 2>/dev/null; then
            ok=1
            break
        fi
        sleep 0.1
    done
    if [[ -z "$ok" ]]; then
        tail -n 40 "$LOGFILE" >&2 || true
        do_stop
        die "server did not answer on 127.0.0.1:$PORT within 60 s"
    fi
    log "ready in $((SECONDS - t0)) s"
    printf '%s\n' "$dsn"
}

do_project() {
    local name="${1:-}"
    [[ -n "$name" ]] || die "usage: $0 project NAME"
    [[ -f "$STATE/db.sqlite3" ]] || die "no database at $STATE/db.sqlite3 (run start first)"
    django_python - "$name" <<'EOF'
import sys
import django
django.setup()

from django.contrib.auth import get_user_model
from teams.models import Team
from projects.models import Project, ProjectMembership, ProjectRole

team = Team.objects.get(name="crashbox")
project = Project.objects.filter(team=team, name=sys.argv[1], is_deleted=False).first()
if project is None:
    project = Project.objects.create(team=team, name=sys.argv[1])
    user = get_user_model().objects.get(username="admin@example.com")
    ProjectMembership.objects.create(project=project, user=user, role=ProjectRole.ADMIN, accepted=True)
print(project.dsn)
EOF
}

do_events() {
    [[ -f "$STATE/db.sqlite3" ]] || die "no database at $STATE/db.sqlite3 (run start first)"
    python3 - "$STATE/db.sqlite3" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
rows = db.execute(
    "SELECT data, issue_id, storage_backend, id FROM events_event ORDER BY digest_order")
for data, issue_id, storage_backend, id_ in rows:
    if storage_backend:
        sys.exit("event %s is in storage backend %r, not in the DB; not supported" % (id_, storage_backend))
    obj = json.loads(data)
    obj["_issue_id"] = issue_id
    print(json.dumps(obj))
EOF
}

do_issues() {
    [[ -f "$STATE/db.sqlite3" ]] || die "no database at $STATE/db.sqlite3 (run start first)"
    python3 - "$STATE/db.sqlite3" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
db.row_factory = sqlite3.Row
keys = {}
for r in db.execute("SELECT issue_id, grouping_key FROM issues_grouping ORDER BY id"):
    keys.setdefault(r["issue_id"], []).append(r["grouping_key"])
for r in db.execute(
        "SELECT id, project_id, digest_order, digested_event_count, stored_event_count, calculated_type, "
        "calculated_value, \"transaction\", last_frame_filename, last_frame_module, last_frame_function, first_seen, "
        "last_seen, is_resolved, is_muted FROM issues_issue WHERE is_deleted = 0 ORDER BY digest_order"):
    obj = dict(r)
    obj["event_count"] = obj["digested_event_count"]
    obj["grouping_keys"] = keys.get(r["id"], [])
    print(json.dumps(obj, sort_keys=True))
EOF
}

case "${1:-}" in
    start) do_start ;;
    stop) lock; do_stop ;;
    events) do_events ;;
    issues) do_issues ;;
    project) lock; do_project "${2:-}" ;;
    status)
        pid="$(server_pid)"
        if [[ -n "$pid" ]]; then log "running (pid $pid, port $PORT)"; exit 0; else log "not running"; exit 1; fi
        ;;
    *)
        echo "usage: $0 {start|stop|events|issues|status|project NAME}" >&2
        exit 2
        ;;
esac
