#!/usr/bin/env python3
"""workflow-commands.py FILE...: parse GitHub workflow files with PyYAML and print, as one
JSON list, every `cargo containerize` invocation in their `run:` steps:
{"file", "step", "args"} where args are the arguments after `containerize`.

Workflow expressions and the shell variables the workflows define are replaced by fixed
values (owner `acme`, actor `octocat`), so the commands can be run as they are. A job with a
`strategy.matrix.include` list gives each command once per entry, with `${{ matrix.KEY }}`
replaced by the entry's values (and the record gets `"job"` and `"matrix"`). A file
that is not YAML, or not a workflow (no `on` and `jobs`), fails."""
import json
import re
import shlex
import sys

import yaml

SUBSTITUTIONS = {
    "${{ github.repository_owner }}": "Acme",
    "${{ github.actor }}": "octocat",
    "${OWNER,,}": "acme",
}

out = []
for path in sys.argv[1:]:
    with open(path) as f:
        doc = yaml.safe_load(f)
    # PyYAML reads the key `on` as the boolean true (YAML 1.1).
    if not isinstance(doc, dict) or "jobs" not in doc or not ({"on", True} & set(doc)):
        sys.exit(f"{path}: not a workflow (needs `on` and `jobs`)")
    for job_name, job in doc["jobs"].items():
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            sys.exit(f"{path}: job {job_name} has no steps")
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        entries = matrix.get("include") or [{}]
        for entry in entries:
            subs = dict(SUBSTITUTIONS)
            subs.update({"${{ matrix.%s }}" % k: str(v) for k, v in entry.items()})
            for n, step in enumerate(steps):
                run = step.get("run")
                if not run:
                    continue
                text = run.replace("\\\n", " ")
                for key, value in subs.items():
                    text = text.replace(key, value)
                if "${{ matrix." in text:
                    sys.exit(f"{path}: job {job_name}: a matrix value is not defined: {text}")
                for line in text.splitlines():
                    m = re.search(r"(?:cargo containerize|cargo run [^|]*?-- containerize)(?=\s|$)(.*)", line)
                    if not m:
                        continue
                    lexer = shlex.shlex(m.group(1), posix=True, punctuation_chars="|>&;")
                    lexer.whitespace_split = True
                    args = []
                    for token in lexer:
                        if token in ("|", ">", ">>", "&", "&&", ";"):
                            break
                        args.append(token)
                    out.append({
                        "file": path,
                        "job": job_name,
                        "matrix": entry,
                        "step": step.get("name", f"step {n + 1}"),
                        "args": args,
                    })
print(json.dumps(out, indent=1))
