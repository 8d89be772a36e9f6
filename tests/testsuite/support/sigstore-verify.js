#!/usr/bin/env node
// Verifies a Sigstore bundle (v0.1-v0.3) signed with a bare public key, with the
// sigstore-js libraries (@sigstore/bundle + @sigstore/verify, installed by
// scripts/install-test-deps.sh): an independent check of the bundles cargo containerize
// writes. No network: an empty trusted root (no Fulcio, Rekor, CT log or TSA) and the
// caller's key, with every threshold at 0. sigstore.verify() cannot do this: it always
// fetches the TUF root and requires a timestamp.
// usage: node sigstore-verify.js BUNDLE.json PUBKEY.pem [ARTIFACT_FILE] [--subject sha256:HEX]
// Exit 0: verified (one line on stdout); 1: rejected (the reason on stderr); 2: usage.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function die(msg, code = 1) {
  process.stderr.write(`verify: ${msg}\n`);
  process.exit(code);
}

const args = process.argv.slice(2);
let wantSubject;
const pos = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--subject') wantSubject = args[++i];
  else if (args[i].startsWith('--subject=')) wantSubject = args[i].slice(10);
  else pos.push(args[i]);
}
if (pos.length < 2 || pos.length > 3 || (wantSubject !== undefined && !/^sha256:[0-9a-f]{64}$/.test(wantSubject))) {
  die('usage: node sigstore-verify.js BUNDLE.json PUBKEY.pem [ARTIFACT_FILE] [--subject sha256:HEX]', 2);
}
const [bundlePath, keyPath, artifactPath] = pos;

try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  if (bundle.verificationMaterial.content.$case !== 'publicKey') {
    throw new Error(`bundle is not a public-key bundle (${bundle.verificationMaterial.content.$case})`);
  }
  const key = crypto.createPublicKey(fs.readFileSync(keyPath));
  const artifact = artifactPath === undefined ? undefined : fs.readFileSync(artifactPath);
  const isDsse = bundle.content.$case === 'dsseEnvelope';
  if (!isDsse && artifact === undefined) {
    throw new Error('messageSignature bundle needs ARTIFACT_FILE');
  }

  // Empty trusted root: no CAs, no Rekor, no CT logs, no TSAs. The only trust is the
  // caller's key, returned whatever the bundle's publicKey.hint says (the hint is not trusted).
  const emptyRoot = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
  const trust = toTrustMaterial(emptyRoot, (_hint) => ({ publicKey: key, validFor: () => true }));
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  verifier.verify(toSignedEntity(bundle, artifact)); // throws VerificationError on failure

  let summary;
  if (isDsse) {
    const env = bundle.content.dsseEnvelope;
    let stmt = {};
    try { stmt = JSON.parse(env.payload.toString('utf8')); } catch { /* non-JSON payload */ }
    const subjects = (Array.isArray(stmt.subject) ? stmt.subject : []).flatMap((s) =>
      Object.entries(s.digest || {}).map(([alg, hex]) => `${alg}:${hex}`));
    const need = [];
    if (wantSubject) need.push(wantSubject);
    if (artifact) need.push('sha256:' + crypto.createHash('sha256').update(artifact).digest('hex'));
    for (const d of need) {
      if (!subjects.includes(d)) throw new Error(`subject mismatch: statement has [${subjects.join(', ')}], expected ${d}`);
    }
    summary = `OK dsse payloadType=${env.payloadType} predicateType=${stmt.predicateType} subjects=${subjects.join(',')}`;
  } else {
    const md = bundle.content.messageSignature.messageDigest;
    // The library checks the signature over the artifact but not messageDigest; check it too.
    const alg = { 0: 'sha256', 1: 'sha256', 2: 'sha384', 3: 'sha512', 4: 'sha3-256', 5: 'sha3-384' }[md.algorithm] || 'sha256';
    const got = crypto.createHash(alg).update(artifact).digest();
    if (!got.equals(Buffer.from(md.digest))) throw new Error('messageDigest does not match artifact');
    const hex = crypto.createHash('sha256').update(artifact).digest('hex');
    if (wantSubject && wantSubject !== `sha256:${hex}`) throw new Error(`artifact is sha256:${hex}, expected ${wantSubject}`);
    summary = `OK messageSignature artifact=sha256:${hex}`;
  }
  console.log(summary);
} catch (e) {
  die(`FAILED: ${e.code ? e.code + ': ' : ''}${e.message}${e.fields ? ' ' + JSON.stringify(e.fields) : ''}`);
}
