#!/usr/bin/env python3
"""seal-cosign-key.py — write a cosign.key the way `cosign generate-key-pair` does, with
libraries that share no code with cargo containerize: a P-256 key from `cryptography`,
its PKCS#8 DER sealed with scrypt (hashlib) and NaCl secretbox (PyNaCl) in
go-securesystemslib's JSON envelope, PEM-armoured as ENCRYPTED SIGSTORE PRIVATE KEY.

Usage: seal-cosign-key.py KEY_OUT PUB_OUT PASSWORD
Needs: pip install cryptography pynacl.
"""
import base64
import hashlib
import json
import os
import sys

import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

if len(sys.argv) != 4:
    sys.exit(__doc__)
key_out, pub_out, password = sys.argv[1:]

private = ec.generate_private_key(ec.SECP256R1())
der = private.private_bytes(
    serialization.Encoding.DER,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
)
# go-securesystemslib's defaults (encrypted.Encrypt): scrypt N=32768, r=8, p=1, a 32-byte
# salt, a 32-byte key; secretbox with a 24-byte nonce.
n, r, p = 32768, 8, 1
salt = os.urandom(32)
nonce = os.urandom(24)
box_key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)
sealed = nacl.secret.SecretBox(box_key).encrypt(der, nonce).ciphertext
envelope = {
    "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": base64.b64encode(salt).decode()},
    "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
    "ciphertext": base64.b64encode(sealed).decode(),
}
body = base64.b64encode(json.dumps(envelope).encode()).decode()
lines = [body[i : i + 64] for i in range(0, len(body), 64)]
with open(key_out, "w") as f:
    f.write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    f.write("\n".join(lines) + "\n")
    f.write("-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
with open(pub_out, "wb") as f:
    f.write(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
