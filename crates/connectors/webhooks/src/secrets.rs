//! Secrets at rest: webhook secrets are sealed with ChaCha20-Poly1305 under a key from
//! `STEWARD_SECRET_KEY` or from a key file beside the database, and generated secrets.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};

use crate::error::WebhookError;

/// The environment variable that contains the secret key: 32 bytes as base64 or as 64 hex
/// digits.
pub const KEY_VARIABLE: &str = "STEWARD_SECRET_KEY";

/// The prefix of Standard Webhooks signing secrets.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

/// Marks the format of a sealed secret: `v1.` then base64url of the nonce and ciphertext.
const SEALED_PREFIX: &str = "v1.";
const NONCE_BYTES: usize = 12;

/// The key that seals webhook secrets. Its `Debug` output hides the key.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(hidden)")
    }
}

/// The origin of a database's key, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File { path: PathBuf, created: bool },
}

impl SecretKey {
    /// Generates a new random key.
    pub fn generate() -> SecretKey {
        SecretKey(rand::random())
    }

    /// Reads a key given as base64 of 32 bytes or as 64 hex digits.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            STANDARD
                .decode(text)
                .map_err(|_| "it is neither base64 nor 64 hex digits".to_string())?
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("it holds {} bytes, not 32", b.len()))?;
        Ok(SecretKey(key))
    }

    /// Returns the key file of a database: `<database>.key` beside it.
    pub fn file_for(database: &Path) -> PathBuf {
        PathBuf::from(format!("{}.key", database.display()))
    }

    /// Loads the key from `STEWARD_SECRET_KEY`, or else from the key file beside
    /// `database`, which is created with mode 0600 when missing.
    pub fn for_database(database: &Path) -> Result<(SecretKey, KeySource), WebhookError> {
        if let Ok(text) = std::env::var(KEY_VARIABLE)
            && !text.trim().is_empty()
        {
            let key = SecretKey::parse(&text).map_err(|reason| {
                WebhookError::Secret(format!(
                    "{KEY_VARIABLE} is not a valid key: {reason}; set it to 32 random bytes in \
                     base64, such as the output of `openssl rand -base64 32`"
                ))
            })?;
            return Ok((key, KeySource::Environment));
        }
        let path = SecretKey::file_for(database);
        let (key, created) = SecretKey::load_or_create(&path)?;
        Ok((key, KeySource::File { path, created }))
    }

    /// Reads the key file at `path`, or creates it with a new key, readable by its owner
    /// only. Returns the key and whether the file was created.
    pub fn load_or_create(path: &Path) -> Result<(SecretKey, bool), WebhookError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                let key = SecretKey::parse(&text).map_err(|reason| {
                    WebhookError::Secret(format!(
                        "the key file {} is not valid: {reason}; restore it from a backup, or \
                         set {KEY_VARIABLE} to the key the secrets were sealed with",
                        path.display()
                    ))
                })?;
                return Ok((key, false));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(WebhookError::Secret(format!(
                    "cannot read the key file {}: {error}",
                    path.display()
                )));
            }
        }
        let key = SecretKey::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                let written = file
                    .write_all(format!("{}\n", STANDARD.encode(key.0)).as_bytes())
                    .and_then(|()| file.sync_all());
                written.map_err(|error| {
                    WebhookError::Secret(format!(
                        "cannot write the key file {}: {error}",
                        path.display()
                    ))
                })?;
                Ok((key, true))
            }
            // Another process created it first: use its key.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                SecretKey::load_or_create(path)
            }
            Err(error) => Err(WebhookError::Secret(format!(
                "cannot create the key file {}: {error}; check that its folder is writable, or \
                 set {KEY_VARIABLE}",
                path.display()
            ))),
        }
    }

    /// Encrypts `secret`, bound to `purpose` (such as `outbound/billing`) so that a sealed
    /// secret copied to another endpoint does not open there.
    pub fn seal(&self, purpose: &str, secret: &str) -> String {
        let cipher = ChaCha20Poly1305::new(&Key::from(self.0));
        let nonce_bytes: [u8; NONCE_BYTES] = rand::random();
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: secret.as_bytes(),
                    aad: purpose.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encrypts messages of any size used here");
        let mut bytes = nonce_bytes.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Decrypts a secret sealed by [`SecretKey::seal`] with the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<String, WebhookError> {
        let invalid = |reason: &str| {
            WebhookError::Secret(format!(
                "the stored secret of {purpose} cannot be opened: {reason}"
            ))
        };
        let encoded = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| invalid("it is not in a known sealed format"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| invalid("it is not valid base64"))?;
        if bytes.len() < NONCE_BYTES {
            return Err(invalid("it is too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at the nonce length");
        let cipher = ChaCha20Poly1305::new(&Key::from(self.0));
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| {
                invalid(&format!(
                    "it was sealed with another key; set {KEY_VARIABLE} or restore the key file \
                     it was sealed with, or rotate the secret"
                ))
            })?;
        String::from_utf8(plain).map_err(|_| invalid("it is not text"))
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{:o}", metadata.permissions().mode() & 0o777),
            "the secret key file is readable by other users; run `chmod 600` on it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Generates a Standard Webhooks signing secret: `whsec_` and base64 of 32 random bytes.
pub fn new_signing_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SIGNING_SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// Generates a secret for a URL: base64url of 32 random bytes, 43 characters.
pub fn new_url_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_needs_key_and_purpose() {
        let key = SecretKey::generate();
        let sealed = key.seal("outbound/billing", "whsec_abc");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(key.open("outbound/billing", &sealed).unwrap(), "whsec_abc");
        assert!(key.open("outbound/other", &sealed).is_err());
        assert!(
            SecretKey::generate()
                .open("outbound/billing", &sealed)
                .is_err()
        );
        assert_ne!(sealed, key.seal("outbound/billing", "whsec_abc"));
    }

    #[test]
    fn keys_parse_from_base64_and_hex() {
        let key = SecretKey::parse(&STANDARD.encode([7u8; 32])).unwrap();
        assert_eq!(key.0, [7u8; 32]);
        assert_eq!(SecretKey::parse(&"07".repeat(32)).unwrap().0, [7u8; 32]);
        let short = SecretKey::parse(&STANDARD.encode([7u8; 16])).unwrap_err();
        assert!(short.contains("16 bytes"), "{short}");
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = SecretKey::file_for(&dir.path().join("firm.db"));
        let (first, created) = SecretKey::load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, created) = SecretKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.0, second.0);
    }

    #[test]
    fn generated_secrets_have_their_formats() {
        let secret = new_signing_secret();
        let bytes = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(new_url_token().len(), 43);
    }
}
