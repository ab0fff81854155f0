//! Webhook signing secrets sealed at rest, so that a database dump alone reveals none.
//!
//! Tally verifies HMAC signatures with these secrets, so unlike API keys they cannot be stored
//! as hashes. They are sealed with ChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`) under a
//! key kept outside the database: `TALLY_SECRET_KEY`, or for the managed cluster a key file in
//! its data directory. Each value is bound to its endpoint (the endpoint id is the associated
//! data), so a sealed secret copied onto another endpoint does not open.
//!
//! Stored form: `tally-sealed:v1:<key id>:` + base64(nonce ‖ ciphertext), where the key id is
//! the first 8 hex digits of the key's SHA-256. The id lets a process tell which key sealed a
//! value, so a key can be replaced: start once with the new key as `TALLY_SECRET_KEY` and the
//! old one as `TALLY_SECRET_KEY_PREVIOUS`, and [`crate::Database::seal_webhook_secrets`]
//! re-seals everything under the new one. A value without the prefix is a secret stored before
//! encryption (or without a key); the same pass seals it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const PREFIX: &str = "tally-sealed:v1:";
const NONCE_LEN: usize = 12;

/// The file the managed cluster keeps its generated key in, inside the data directory.
pub const KEY_FILE: &str = "secret.key";

/// One sealing key: 32 bytes, written as their standard base64 (44 characters).
#[derive(Clone)]
pub struct SecretKey {
    id: String,
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or("a secret key is 32 bytes in standard base64 (44 characters, e.g. from `openssl rand -base64 32`)")?;
        let id = hex::encode(&Sha256::digest(&bytes)[..4]);
        Ok(Self {
            id,
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// A new random key, in the form [`parse`](Self::parse) reads.
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// The key's id, as it appears in the values it sealed.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn seal(&self, endpoint: Uuid, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret.as_bytes(),
            aad: endpoint.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("sealing a secret of at most 512 bytes cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.id, STANDARD.encode(out))
    }

    fn open(&self, endpoint: Uuid, sealed: &str) -> Option<String> {
        let bytes = STANDARD
            .decode(sealed)
            .ok()
            .filter(|b| b.len() > NONCE_LEN)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: endpoint.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// The keys a process holds: the one it seals with, and the one it replaces (if any).
#[derive(Debug, Clone, Default)]
pub struct SecretKeys {
    current: Option<SecretKey>,
    previous: Option<SecretKey>,
}

/// Why a stored secret could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the webhook secret of endpoint {endpoint} {reason}")]
pub struct OpenError {
    pub endpoint: Uuid,
    pub reason: String,
}

impl SecretKeys {
    pub fn new(current: Option<SecretKey>, previous: Option<SecretKey>) -> Self {
        Self { current, previous }
    }

    /// Whether secrets are sealed at all (without a key they are stored as given).
    pub fn sealing(&self) -> bool {
        self.current.is_some()
    }

    /// The stored form of `secret` for `endpoint`.
    pub fn seal(&self, endpoint: Uuid, secret: &str) -> String {
        match &self.current {
            Some(key) => key.seal(endpoint, secret),
            None => secret.to_string(),
        }
    }

    /// The usable secret from its stored form.
    pub fn open(&self, endpoint: Uuid, stored: &str) -> Result<String, OpenError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let fail = |reason: String| OpenError { endpoint, reason };
        let (id, sealed) = rest
            .split_once(':')
            .ok_or_else(|| fail("is malformed".into()))?;
        let key = [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)
            .ok_or_else(|| {
                fail(format!(
                    "was sealed with key {id}, and this process holds {}: start it with that key as TALLY_SECRET_KEY (or as TALLY_SECRET_KEY_PREVIOUS while replacing it)",
                    self.describe()
                ))
            })?;
        key.open(endpoint, sealed)
            .ok_or_else(|| fail(format!("does not open with key {id}: it was altered")))
    }

    /// Whether a stored value should be sealed (again) under the current key.
    pub fn needs_sealing(&self, stored: &str) -> bool {
        let Some(key) = &self.current else {
            return false;
        };
        !stored.starts_with(&format!("{PREFIX}{}:", key.id))
    }

    fn describe(&self) -> String {
        match (&self.current, &self.previous) {
            (None, _) => "no key".into(),
            (Some(c), None) => format!("key {}", c.id),
            (Some(c), Some(p)) => format!("keys {} and {}", c.id, p.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::parse(&SecretKey::generate()).unwrap()
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_endpoint() {
        let (k, other) = (key(), key());
        let keys = SecretKeys::new(Some(k.clone()), None);
        let (endpoint, elsewhere) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = keys.seal(endpoint, "whsec_abcdefghijklmnop");
        assert!(!sealed.contains("abcdefghijklmnop"));
        assert!(sealed.starts_with(&format!("tally-sealed:v1:{}:", k.id())));
        assert_eq!(
            keys.open(endpoint, &sealed).unwrap(),
            "whsec_abcdefghijklmnop"
        );
        assert!(
            keys.open(elsewhere, &sealed).is_err(),
            "bound to its endpoint"
        );
        let wrong = SecretKeys::new(Some(other.clone()), None);
        let refused = wrong.open(endpoint, &sealed).unwrap_err();
        assert!(refused.reason.contains(k.id()), "{refused}");
        assert!(SecretKeys::default().open(endpoint, &sealed).is_err());
        // Replacing the key: the old one still opens, and the value needs sealing again.
        let rotating = SecretKeys::new(Some(other), Some(k));
        assert_eq!(
            rotating.open(endpoint, &sealed).unwrap(),
            "whsec_abcdefghijklmnop"
        );
        assert!(rotating.needs_sealing(&sealed) && !keys.needs_sealing(&sealed));
        // Stored before encryption: read as it is, and sealed by the next pass.
        assert_eq!(
            keys.open(endpoint, "plain-old-secret").unwrap(),
            "plain-old-secret"
        );
        assert!(keys.needs_sealing("plain-old-secret"));
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        assert!(SecretKey::parse("c2hvcnQ=").is_err());
        assert!(SecretKey::parse("not base64 at all").is_err());
        assert_eq!(SecretKey::generate().len(), 44);
    }
}
