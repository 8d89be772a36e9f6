//! `--sign-key FILE` → a P-256 signing key: a PEM private key (`PRIVATE KEY`, PKCS#8, as
//! `openssl genpkey` writes it, or `EC PRIVATE KEY`, SEC1), or cosign's own encrypted
//! `cosign.key` (`ENCRYPTED SIGSTORE PRIVATE KEY`, or `ENCRYPTED COSIGN PRIVATE KEY` from
//! cosign before v2.4): scrypt derives a key from the passphrase, NaCl secretbox
//! (XSalsa20-Poly1305) opens the PKCS#8 key. The format is securesystemslib's, as
//! `cosign generate-key-pair` writes it; see
//! <https://github.com/sigstore/cosign/blob/main/pkg/cosign/keys.go>.
//!
//! Keyless signing (a CI token exchanged at Fulcio for a certificate, the signature
//! logged in Rekor) would be a second kind of [`SigningIdentity`]; it is not supported
//! yet, because it cannot be tested without those services.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey, signature::Signer as _};
use p256::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// Errors reading a signing key.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KeyError {
    /// The file could not be read.
    #[error("failed to read the signing key `{}`: {source}", path.display())]
    #[diagnostic(
        code(containerize::sign),
        help(
            "--sign-key (or CARGO_CONTAINERIZE_SIGN_KEY) names a PEM file with an ECDSA P-256 private key, such as `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out cosign.pem`, or a cosign.key"
        )
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a key this tool reads.
    #[error("`{}` is not an ECDSA P-256 private key: {reason}", path.display())]
    #[diagnostic(
        code(containerize::sign),
        help(
            "use a PEM `PRIVATE KEY` or `EC PRIVATE KEY` on the P-256 curve (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256), or a key from `cosign generate-key-pair`"
        )
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An encrypted cosign key and no passphrase.
    #[error("`{}` is an encrypted cosign key and no passphrase was given", path.display())]
    #[diagnostic(
        code(containerize::sign),
        help("set CARGO_CONTAINERIZE_SIGN_PASSWORD (or COSIGN_PASSWORD) to the key's passphrase")
    )]
    NoPassphrase {
        /// The file.
        path: PathBuf,
    },
    /// The passphrase does not open the key.
    #[error("the passphrase does not decrypt the cosign key `{}`", path.display())]
    #[diagnostic(
        code(containerize::sign),
        help(
            "check CARGO_CONTAINERIZE_SIGN_PASSWORD (or COSIGN_PASSWORD); it is the passphrase given to `cosign generate-key-pair`"
        )
    )]
    WrongPassphrase {
        /// The file.
        path: PathBuf,
    },
}

/// Who signs: today a key pair; keyless (Fulcio + Rekor) would be another variant.
#[derive(Clone)]
pub enum SigningIdentity {
    /// An ECDSA P-256 key (RFC 6979 signatures: the same bytes give the same signature,
    /// so a re-run pushes nothing new).
    Key(KeyPair),
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigningIdentity::Key(k) => write!(f, "Key({})", k.hint),
        }
    }
}

/// A loaded key pair.
#[derive(Clone)]
pub struct KeyPair {
    key: SigningKey,
    /// The public key as PEM (`PUBLIC KEY`, SPKI), what `verify --key` and cosign take.
    pub public_pem: String,
    /// The bundle's key hint: base64 of the SHA-256 of the public key's DER (SPKI).
    pub hint: String,
}

impl KeyPair {
    /// The DER signature (ECDSA P-256, SHA-256) of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.key.sign(message);
        sig.to_der().as_bytes().to_vec()
    }

    fn from_key(key: SigningKey) -> Result<Self, String> {
        let public = VerifyingKey::from(&key);
        let der = public.to_public_key_der().map_err(|e| e.to_string())?;
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?;
        Ok(KeyPair {
            key,
            public_pem,
            hint: STANDARD.encode(Sha256::digest(der.as_bytes())),
        })
    }
}

/// Reads the key at `path`; `passphrase` opens a cosign key.
pub fn load_key(path: &Path, passphrase: Option<&str>) -> Result<SigningIdentity, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |reason: String| KeyError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let label = text
        .lines()
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or_else(|| format("no PEM block (-----BEGIN …-----) in it".into()))?;
    let key = match label {
        "PRIVATE KEY" => SigningKey::from_pkcs8_pem(&text).map_err(|e| format(e.to_string()))?,
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(&text)
            .map(SigningKey::from)
            .map_err(|e| format(format!("{e} (is it on the P-256 curve?)")))?,
        "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
            let passphrase = passphrase.ok_or_else(|| KeyError::NoPassphrase {
                path: path.to_path_buf(),
            })?;
            let der = decrypt_cosign(&text, passphrase, path)?;
            SigningKey::from_pkcs8_der(&der).map_err(|e| format(e.to_string()))?
        }
        "PUBLIC KEY" => {
            return Err(format(
                "it is a public key; --sign-key takes the private one (verify --key takes the public)".into(),
            ));
        }
        other => return Err(format(format!("a PEM `{other}` block"))),
    };
    KeyPair::from_key(key)
        .map(SigningIdentity::Key)
        .map_err(format)
}

/// securesystemslib's encrypted-key JSON, as cosign writes it.
#[derive(Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct ScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// The PKCS#8 DER inside a cosign key.
fn decrypt_cosign(text: &str, passphrase: &str, path: &Path) -> Result<Vec<u8>, KeyError> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};
    let format = |reason: String| KeyError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .collect();
    let json = STANDARD
        .decode(body.trim())
        .map_err(|e| format(format!("its PEM body is not base64: {e}")))?;
    let enc: Encrypted = serde_json::from_slice(&json)
        .map_err(|e| format(format!("not cosign's encrypted-key JSON: {e}")))?;
    if enc.kdf.name != "scrypt" || enc.cipher.name != "nacl/secretbox" {
        return Err(format(format!(
            "encrypted with {} and {}; cosign keys use scrypt and nacl/secretbox",
            enc.kdf.name, enc.cipher.name
        )));
    }
    let b64 = |s: &str, what: &str| {
        STANDARD
            .decode(s)
            .map_err(|e| format(format!("its {what} is not base64: {e}")))
    };
    let salt = b64(&enc.kdf.salt, "salt")?;
    let nonce = b64(&enc.cipher.nonce, "nonce")?;
    let ciphertext = b64(&enc.ciphertext, "ciphertext")?;
    let n = enc.kdf.params.N;
    if !n.is_power_of_two() || n < 2 {
        return Err(format(format!("scrypt N = {n} is not a power of two")));
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, enc.kdf.params.r, enc.kdf.params.p)
        .map_err(|e| format(format!("scrypt parameters: {e}")))?;
    let mut secret = [0u8; 32];
    scrypt::scrypt(passphrase.as_bytes(), &salt, &params, &mut secret)
        .map_err(|e| format(format!("scrypt: {e}")))?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|_| format("its nonce is not 24 bytes".into()))?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new((&secret).into());
    cipher
        .decrypt((&nonce).into(), ciphertext.as_slice())
        .map_err(|_| KeyError::WrongPassphrase {
            path: path.to_path_buf(),
        })
}

/// A P-256 key in PKCS#8 PEM (made with openssl genpkey; for tests only).
#[cfg(test)]
pub(crate) const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAZeldWD13LHeBbXp
BazPTcmD063WYUwH8u5v9Jg5cJWhRANCAAQEF1oEUxMwaS0Pd8UlhXhX15fP9JB8
SdLAuy2ioSQqJiwezrmy6amSe2bkQeisGgvvCPl67oYvcc0V9ohdKhHa
-----END PRIVATE KEY-----
";

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn pkcs8_keys_sign_deterministically_and_public_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let SigningIdentity::Key(k) = load_key(&write(&dir, "k.pem", TEST_KEY), None).unwrap();
        assert_eq!(k.sign(b"x"), k.sign(b"x"));
        assert!(k.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let public = write(&dir, "p.pem", &k.public_pem);
        let err = load_key(&public, None).unwrap_err().to_string();
        assert!(err.contains("it is a public key"), "{err}");
        let err = load_key(&write(&dir, "x", "hello"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no PEM block"), "{err}");
    }

    /// A cosign key round trip: the same JSON layout sealed here with the same
    /// primitives opens with the right passphrase only.
    #[test]
    fn cosign_keys_open_with_their_passphrase_only() {
        use crypto_secretbox::aead::{Aead as _, KeyInit as _};
        use p256::pkcs8::EncodePrivateKey as _;
        let key = SigningKey::from_pkcs8_pem(TEST_KEY).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let salt = [7u8; 32];
        let nonce = [9u8; 24];
        let params = scrypt::Params::new(10, 8, 1).unwrap();
        let mut secret = [0u8; 32];
        scrypt::scrypt(b"pw", &salt, &params, &mut secret).unwrap();
        let ct = crypto_secretbox::XSalsa20Poly1305::new((&secret).into())
            .encrypt((&nonce).into(), der.as_bytes())
            .unwrap();
        let json = serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1024, "r": 8, "p": 1}, "salt": STANDARD.encode(salt)},
            "cipher": {"name": "nacl/secretbox", "nonce": STANDARD.encode(nonce)},
            "ciphertext": STANDARD.encode(ct),
        });
        let pem = format!(
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            STANDARD.encode(json.to_string())
        );
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "cosign.key", &pem);
        assert!(matches!(
            load_key(&path, None),
            Err(KeyError::NoPassphrase { .. })
        ));
        assert!(matches!(
            load_key(&path, Some("nope")),
            Err(KeyError::WrongPassphrase { .. })
        ));
        let SigningIdentity::Key(k) = load_key(&path, Some("pw")).unwrap();
        let SigningIdentity::Key(plain) = load_key(&write(&dir, "k.pem", TEST_KEY), None).unwrap();
        assert_eq!(k.hint, plain.hint);
    }
}
