#!/usr/bin/env python3
"""validate-provenance.py — check in-toto Statement v1 + SLSA Provenance v1 documents.

Usage: validate-provenance.py [--expect-subject NAME@sha256:HEX] [--expect-builder ID]
                              [--expect-invocation ID|none] FILE...

For each FILE (exit 1 if any check fails in any file):
  1. The Statement parses strictly into in-toto-attestation's protobuf Statement (no
     unknown fields, right JSON types) and passes its validate(): `_type` is
     https://in-toto.io/Statement/v1, at least one subject, each subject a valid
     ResourceDescriptor with a digest, a predicateType and a non-empty predicate.
  2. predicateType is https://slsa.dev/provenance/v1 and the predicate parses strictly into
     the SLSA Provenance v1 protobuf (in_toto_attestation.predicates.provenance.v1), so
     every field name and type is the spec's; then what the spec requires and the proto
     does not: buildDefinition.buildType (a URI) and externalParameters (an object) are set,
     runDetails.builder.id is set (a URI), every resolvedDependency is a valid
     ResourceDescriptor (name, uri or digest set);
  3. digests: sha256 / sha512 / gitCommit values are lowercase hex of the right length;
  4. reproducibility: no startedOn / finishedOn (this tool writes no wall-clock time);
  5. the --expect-* options: the one subject equals NAME with that sha256, builder.id
     equals ID, runDetails.metadata.invocationId equals ID (or is absent for `none`).
Needs: pip install in-toto-attestation (brings protobuf).
"""
import argparse
import json
import re
import sys
from urllib.parse import urlparse

try:
    import google.protobuf.json_format as pb_json
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
except ImportError as e:  # pragma: no cover
    sys.exit(f"validate-provenance: missing Python package ({e}); "
             "run scripts/install-test-deps.sh (pip install in-toto-attestation)")

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SLSA_V1 = "https://slsa.dev/provenance/v1"
HEX_LEN = {"sha256": 64, "sha512": 128, "gitCommit": 40}


def is_uri(s):
    u = urlparse(s)
    return bool(u.scheme) and (bool(u.netloc) or bool(u.path))


def check_digests(where, digest, E):
    for alg, value in (digest or {}).items():
        n = HEX_LEN.get(alg)
        if n is not None and not re.fullmatch(f"[0-9a-f]{{{n}}}", str(value)):
            E(f"{where}: digest {alg} {value!r} is not {n} lowercase hex digits")


def validate(path, a):
    errs = []
    E = errs.append
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        return [f"cannot read JSON: {e}"]
    pb = statement_pb2.Statement()
    try:
        pb_json.ParseDict(doc, pb, ignore_unknown_fields=False)
        Statement.copy_from_pb(pb).validate()
    except (pb_json.ParseError, ValueError) as e:
        return [f"not an in-toto Statement v1: {e}"]
    if doc.get("_type") != STATEMENT_V1:
        E(f"_type is {doc.get('_type')!r}")
    for i, s in enumerate(doc.get("subject", [])):
        check_digests(f"subject[{i}]", s.get("digest"), E)
    if doc.get("predicateType") != SLSA_V1:
        E(f"predicateType is {doc.get('predicateType')!r}, want {SLSA_V1}")
        return errs
    pred = doc.get("predicate", {})
    prov = provenance_pb2.Provenance()
    try:
        pb_json.ParseDict(pred, prov, ignore_unknown_fields=False)
    except pb_json.ParseError as e:
        return errs + [f"predicate is not SLSA Provenance v1: {e}"]
    bd = pred.get("buildDefinition") or {}
    if not bd.get("buildType"):
        E("buildDefinition.buildType is missing")
    elif not is_uri(bd["buildType"]):
        E(f"buildDefinition.buildType {bd['buildType']!r} is not a URI")
    if not isinstance(bd.get("externalParameters"), dict) or not bd["externalParameters"]:
        E("buildDefinition.externalParameters is missing or empty")
    for i, rdpb in enumerate(prov.build_definition.resolved_dependencies):
        try:
            ResourceDescriptor.copy_from_pb(rdpb).validate()
        except ValueError as e:
            E(f"resolvedDependencies[{i}]: {e}")
        rd = bd["resolvedDependencies"][i]
        check_digests(f"resolvedDependencies[{i}]", rd.get("digest"), E)
        if "uri" in rd and not is_uri(rd["uri"]):
            E(f"resolvedDependencies[{i}].uri {rd['uri']!r} is not a URI")
    rd_ = pred.get("runDetails") or {}
    builder = (rd_.get("builder") or {}).get("id")
    if not builder:
        E("runDetails.builder.id is missing")
    elif not is_uri(builder):
        E(f"runDetails.builder.id {builder!r} is not a URI")
    meta = rd_.get("metadata") or {}
    for t in ("startedOn", "finishedOn"):
        if t in meta:
            E(f"runDetails.metadata.{t} is set: a wall-clock time makes builds differ")
    if a.expect_subject:
        name, _, digest = a.expect_subject.partition("@")
        want = [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}]
        if doc.get("subject") != want:
            E(f"subject is {doc.get('subject')!r}, want {want!r}")
    if a.expect_builder and builder != a.expect_builder:
        E(f"builder.id is {builder!r}, want {a.expect_builder!r}")
    if a.expect_invocation:
        got = meta.get("invocationId")
        want = None if a.expect_invocation == "none" else a.expect_invocation
        if got != want:
            E(f"invocationId is {got!r}, want {want!r}")
    return errs


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", metavar="FILE")
    ap.add_argument("--expect-subject")
    ap.add_argument("--expect-builder")
    ap.add_argument("--expect-invocation")
    a = ap.parse_args()
    bad = 0
    for f in a.files:
        errs = validate(f, a)
        for e in errs:
            print(f"ERROR {f}: {e}", file=sys.stderr)
        if errs:
            bad += 1
            print(f"validate-provenance: FAIL: {f} ({len(errs)} problem(s))", file=sys.stderr)
        else:
            print(f"validate-provenance: OK: {f} (in-toto Statement v1, SLSA Provenance v1)",
                  file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
