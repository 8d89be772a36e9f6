#!/usr/bin/env python3
"""Validate a --message-format json stream (stdin or FILE) against docs/message-format.schema.json.

Checks every line against the schema and the documented order: plan, sbom-written,
image-built, image-pushed, kube-written, compose-written, finished."""
import json
import pathlib
import sys

import jsonschema

schema_path = pathlib.Path(__file__).resolve().parents[3] / "docs" / "message-format.schema.json"
schema = json.loads(schema_path.read_text())
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
lines = [l for l in text.splitlines() if l.strip()]
errors = []
events = []
for n, line in enumerate(lines, 1):
    try:
        ev = json.loads(line)
    except json.JSONDecodeError as e:
        errors.append(f"line {n}: not JSON: {e}")
        continue
    events.append(ev)
    for err in validator.iter_errors(ev):
        errors.append(f"line {n} ({ev.get('reason')}): {err.message}")
if not events or events[-1].get("reason") != "finished":
    errors.append("the last event is not `finished`")
if events and events[0].get("reason") not in ("plan", "finished"):
    errors.append("the first event is not `plan`")
ORDER = ["plan", "sbom-written", "image-built", "image-pushed", "image-loaded", "kube-written", "compose-written", "finished"]
ranks = [ORDER.index(ev["reason"]) for ev in events if ev.get("reason") in ORDER]
if ranks != sorted(ranks):
    errors.append("events out of order: " + ", ".join(ev.get("reason", "?") for ev in events))
for e in errors:
    print(e, file=sys.stderr)
print(f"validate-events: {len(events)} events, {len(errors)} errors", file=sys.stderr)
sys.exit(1 if errors else 0)
