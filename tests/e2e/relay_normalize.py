#!/usr/bin/env python3
"""Runs Sentry events through Sentry Relay's own store normaliser and reports what it objects to.

Usage:
    relay_normalize.py [--show] FILE...      (FILE may be - for standard input)

Each FILE holds Sentry event payloads (the JSON of an envelope's `event` item): one JSON document per line, or one
document (an event, or an array of events) for the whole file.

Each event goes through `sentry_relay.processing.StoreNormalizer(...).normalize_event(event)` configured as Sentry's
ingestion configures it (schema validation, normalisation, trimming to Sentry's size limits, unknown attributes
removed). A problem is:
  * an entry of the normalised event's `errors` (invalid data, unknown attributes, values Relay had to drop);
  * a `_meta` annotation other than trimming. Trimming annotates with `len` (the original length) and with remarks
    whose rule id starts with `!limit`; any other key (`err`, `val`, ...) or remark (a PII rule, `!invalid`, ...)
    means Relay changed or rejected something.

Prints one line per problem, then a summary line, and the normalised events too with --show.
Exit status: 0 no problem, 1 problems, 2 bad usage or input, 3 sentry_relay not importable.
"""
import json
import sys

TRIMMING_KEYS = {"len", "rem"}
TRIMMING_RULE_PREFIX = "!limit"


def load_events(path):
    if path == "-":
        text = sys.stdin.read()
        name = "<stdin>"
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        name = path
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return [(name, whole)]
    if isinstance(whole, list):
        return [("%s[%d]" % (name, i), e) for i, e in enumerate(whole)]
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(("%s:%d" % (name, number), json.loads(line)))
        except json.JSONDecodeError as e:
            raise ValueError("%s:%d is not JSON: %s" % (name, number, e))
    return events


def meta_nodes(meta, path=()):
    """Yields (path, annotation) for each annotation of a `_meta` tree (annotations sit under the key "")."""
    if not isinstance(meta, dict):
        return
    for key, value in meta.items():
        if key == "":
            yield ".".join(path) or "<event>", value
        else:
            yield from meta_nodes(value, path + (key,))


def is_trimming(annotation):
    if not isinstance(annotation, dict) or not set(annotation) <= TRIMMING_KEYS:
        return False
    for remark in annotation.get("rem") or []:
        rule = remark[0] if isinstance(remark, list) and remark else remark
        if not (isinstance(rule, str) and rule.startswith(TRIMMING_RULE_PREFIX)):
            return False
    return True


def problems_of(normalized):
    found = []
    for error in normalized.get("errors") or []:
        found.append("error %s" % json.dumps(error, sort_keys=True))
    for path, annotation in meta_nodes(normalized.get("_meta") or {}):
        if not is_trimming(annotation):
            found.append("remark at %s: %s" % (path, json.dumps(annotation, sort_keys=True)))
    return found


def trimmed_of(normalized):
    return [path for path, a in meta_nodes(normalized.get("_meta") or {}) if is_trimming(a)]


def main(argv):
    show = "--show" in argv
    paths = [a for a in argv if a != "--show"]
    if not paths or any(a.startswith("--") for a in paths):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        import importlib.metadata

        from sentry_relay.processing import StoreNormalizer

        version = importlib.metadata.version("sentry-relay")
    except ImportError as e:
        print("sentry_relay is not importable with %s: %s" % (sys.executable, e), file=sys.stderr)
        return 3
    try:
        events = [item for path in paths for item in load_events(path)]
    except (OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if not events:
        print("error: no events in %s" % " ".join(paths), file=sys.stderr)
        return 2

    normalizer = StoreNormalizer(
        project_id=1,
        client="crashbox",
        # Sentry passes the sender's address: it stands in for a user's "{{auto}}" IP.
        client_ip="127.0.0.1",
        protocol_version="7",
        enable_trimming=True,
        remove_other=True,
        is_renormalize=False,
        normalize_user_agent=True,
    )
    total = 0
    for where, event in events:
        label = "%s (event %s)" % (where, event.get("event_id", "?") if isinstance(event, dict) else "?")
        try:
            normalized = normalizer.normalize_event(event)
        except Exception as e:  # Relay refuses the whole event (not an object, unparsable value, ...)
            print("%s: rejected: %s: %s" % (label, type(e).__name__, e))
            total += 1
            continue
        found = problems_of(normalized)
        for problem in found:
            print("%s: %s" % (label, problem))
        trimmed = trimmed_of(normalized)
        if trimmed:
            print("%s: trimmed (allowed): %s" % (label, ", ".join(trimmed)))
        if show:
            print(json.dumps(normalized, indent=2, sort_keys=True))
        total += len(found)
    print("sentry-relay %s: %d events, %d problems" % (version, len(events), total))
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
