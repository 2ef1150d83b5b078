#!/usr/bin/env bash
# Sentry Relay's own event normaliser (PyPI `sentry-relay`) in a throw-away virtualenv, for checking the Sentry
# events crashbox sends the way Sentry's ingestion would.
#
# Usage:
#   tests/e2e/relay.sh install          # create the venv and install sentry-relay if needed; prints its python
#   tests/e2e/relay.sh check FILE...    # tests/e2e/relay_normalize.py FILE... with that python (install first)
#
# Layout (repo = this script's ../..):
#   <repo>/target/relay/venv    python virtualenv with sentry-relay==$RELAY_VERSION (kept between runs)
#
# tests/e2e/relay_normalizer.rs finds the python in CRASHBOX_E2E_RELAY_PYTHON (.ci/run sets it from `install`),
# else in <repo>/target/relay/venv, else python3.
set -euo pipefail

RELAY_VERSION="0.10.1"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
BASE="$REPO/target/relay"
VENV="$BASE/venv"

log() { printf 'relay.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_venv() {
    mkdir -p "$BASE"
    # Serialise concurrent installs into the same venv.
    exec 9>"$BASE/.lock"
    flock 9
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating virtualenv $VENV"
        python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi
    local have
    have="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("sentry-relay"))' 2>/dev/null || true)"
    if [[ "$have" != "$RELAY_VERSION" ]]; then
        log "installing sentry-relay==$RELAY_VERSION into $VENV (found: ${have:-none})"
        "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "sentry-relay==$RELAY_VERSION" >&2
    fi
    "$VENV/bin/python" -c 'from sentry_relay.processing import StoreNormalizer' ||
        die "sentry_relay installed but not importable in $VENV"
    exec 9>&-
}

case "${1:-}" in
    install)
        ensure_venv
        printf '%s\n' "$VENV/bin/python"
        ;;
    check)
        shift
        [[ -x "$VENV/bin/python" ]] || die "no venv at $VENV (run: $0 install)"
        exec "$VENV/bin/python" "$SCRIPT_DIR/relay_normalize.py" "$@"
        ;;
    *)
        echo "usage: $0 {install|check FILE...}" >&2
        exit 2
        ;;
esac
