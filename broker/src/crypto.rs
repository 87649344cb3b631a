//! Encryption at rest of the secrets the broker stores (deployment specs with admin passwords,
//! binding credentials): AES-256-GCM with a random 96-bit nonce per value, written as
//! `v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>` so old keys stay readable after a rotation.

use crate::config::EncryptionSettings;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::fmt;

const FORMAT_VERSION: &str = "v1";

/// Failure to set up keys or to decrypt a stored value. Never carries plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The settings hold no usable key.
    #[error("encryption settings: {0}")]
    Config(String),
    /// The stored value is not in the `v1:<key id>:<data>` format.
    #[error("stored secret is malformed")]
    Malformed,
    /// The stored value names a key the settings do not hold.
    #[error("stored secret uses unknown key {0:?}")]
    UnknownKey(String),
    /// Authentication failed: wrong key or tampered data.
    #[error("stored secret cannot be decrypted (wrong key or tampered data)")]
    Decrypt,
    /// The system random generator failed.
    #[error("random generator failure")]
    Random,
}

/// The keyring: encrypts with the current key, decrypts with the key a value names.
pub struct Cipher {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    rng: SystemRandom,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("current", &self.current)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// A fresh random key in the settings format (base64 of 32 bytes), for `osbctl` and tests.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random generator works");
    STANDARD.encode(bytes)
}

impl Cipher {
    /// Builds the keyring; the current key must be among the keys and every key 32 bytes.
    pub fn new(settings: &EncryptionSettings) -> Result<Self, CryptoError> {
        if settings.keys.is_empty() {
            return Err(CryptoError::Config(
                "no key configured: set encryption.keys (id and base64 of 32 random bytes) and name one in encryption.current".into(),
            ));
        }
        let mut keys = HashMap::new();
        for key in &settings.keys {
            if key.id.is_empty() || key.id.contains(':') {
                return Err(CryptoError::Config(format!(
                    "key id {:?} must be non-empty and contain no ':'",
                    key.id
                )));
            }
            let bytes = STANDARD.decode(key.key.expose().trim()).map_err(|_| {
                CryptoError::Config(format!("key {:?} is not valid base64", key.id))
            })?;
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| {
                CryptoError::Config(format!(
                    "key {:?} must be 32 bytes, found {}",
                    key.id,
                    bytes.len()
                ))
            })?;
            if keys
                .insert(key.id.clone(), LessSafeKey::new(unbound))
                .is_some()
            {
                return Err(CryptoError::Config(format!(
                    "key id {:?} appears twice",
                    key.id
                )));
            }
        }
        if !keys.contains_key(&settings.current) {
            return Err(CryptoError::Config(format!(
                "the current key {:?} is not among the configured keys",
                settings.current
            )));
        }
        Ok(Self {
            current: settings.current.clone(),
            keys,
            rng: SystemRandom::new(),
        })
    }

    /// Encrypts `plaintext` with the current key.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(self.current.as_bytes()),
            &mut buf,
        )
        .map_err(|_| CryptoError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!(
            "{FORMAT_VERSION}:{}:{}",
            self.current,
            STANDARD.encode(out)
        ))
    }

    /// Decrypts a value written by [`Cipher::encrypt`] with any configured key.
    pub fn decrypt(&self, stored: &str) -> Result<Vec<u8>, CryptoError> {
        let mut parts = stored.splitn(3, ':');
        let (Some(FORMAT_VERSION), Some(key_id), Some(data)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_string()))?;
        let raw = STANDARD.decode(data).map_err(|_| CryptoError::Malformed)?;
        if raw.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
        let mut buf = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(key_id.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(plain.to_vec())
    }

    /// The stored-value prefix of the current key (`v1:<id>:`).
    pub fn current_prefix(&self) -> String {
        format!("{FORMAT_VERSION}:{}:", self.current)
    }

    /// `stored` encrypted again under the current key; `None` when it already is.
    pub fn reencrypt(&self, stored: &str) -> Result<Option<String>, CryptoError> {
        if stored.starts_with(&self.current_prefix()) {
            return Ok(None);
        }
        let plain = self.decrypt(stored)?;
        self.encrypt(&plain).map(Some)
    }

    /// Encrypts the JSON of `value`.
    pub fn encrypt_json<T: serde::Serialize>(&self, value: &T) -> Result<String, CryptoError> {
        let json = serde_json::to_vec(value).map_err(|_| CryptoError::Malformed)?;
        self.encrypt(&json)
    }

    /// Decrypts and decodes a JSON value written by [`Cipher::encrypt_json`].
    pub fn decrypt_json<T: serde::de::DeserializeOwned>(
        &self,
        stored: &str,
    ) -> Result<T, CryptoError> {
        let plain = self.decrypt(stored)?;
        serde_json::from_slice(&plain).map_err(|_| CryptoError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EncryptionKey;
    use common::secret::SecretString;

    fn settings(current: &str, keys: &[(&str, String)]) -> EncryptionSettings {
        EncryptionSettings {
            current: current.into(),
            keys: keys
                .iter()
                .map(|(id, key)| EncryptionKey {
                    id: (*id).into(),
                    key: SecretString::new(key.clone()),
                })
                .collect(),
        }
    }

    #[test]
    fn a_value_round_trips_and_never_shows_in_the_stored_form() {
        let cipher = Cipher::new(&settings("k1", &[("k1", generate_key())])).unwrap();
        let stored = cipher.encrypt(b"hunter2-admin-password").unwrap();
        assert!(stored.starts_with("v1:k1:"));
        assert!(!stored.contains("hunter2"));
        assert_eq!(cipher.decrypt(&stored).unwrap(), b"hunter2-admin-password");
    }

    #[test]
    fn two_encryptions_of_the_same_value_differ() {
        let cipher = Cipher::new(&settings("k1", &[("k1", generate_key())])).unwrap();
        assert_ne!(cipher.encrypt(b"x").unwrap(), cipher.encrypt(b"x").unwrap());
    }

    #[test]
    fn a_value_encrypted_with_another_key_material_does_not_decrypt() {
        let a = Cipher::new(&settings("k1", &[("k1", generate_key())])).unwrap();
        let b = Cipher::new(&settings("k1", &[("k1", generate_key())])).unwrap();
        let stored = a.encrypt(b"secret").unwrap();
        assert!(matches!(b.decrypt(&stored), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn a_value_naming_an_unknown_key_is_refused() {
        let a = Cipher::new(&settings("k1", &[("k1", generate_key())])).unwrap();
        let b = Cipher::new(&settings("k2", &[("k2", generate_key())])).unwrap();
        let stored = a.encrypt(b"secret").unwrap();
        assert!(matches!(b.decrypt(&stored), Err(CryptoError::UnknownKey(id)) if id == "k1"));
    }

    #[test]
    fn tampered_data_is_refused() {
        let cipher = Cipher::new(&settings("k1", &[("k1", generate_key())])).unwrap();
        let stored = cipher.encrypt(b"secret").unwrap();
        let data = stored.strip_prefix("v1:k1:").unwrap();
        let mut raw = STANDARD.decode(data).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("v1:k1:{}", STANDARD.encode(raw));
        assert!(matches!(
            cipher.decrypt(&tampered),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            cipher.decrypt("v1:k1"),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn old_keys_stay_readable_after_rotation() {
        let old = generate_key();
        let before = Cipher::new(&settings("old", &[("old", old.clone())])).unwrap();
        let stored = before.encrypt(b"secret").unwrap();
        let after =
            Cipher::new(&settings("new", &[("new", generate_key()), ("old", old)])).unwrap();
        assert_eq!(after.decrypt(&stored).unwrap(), b"secret");
        assert!(after.encrypt(b"x").unwrap().starts_with("v1:new:"));
    }

    #[test]
    fn reencryption_moves_a_value_to_the_current_key_and_leaves_current_ones_alone() {
        let old = generate_key();
        let before = Cipher::new(&settings("old", &[("old", old.clone())])).unwrap();
        let stored = before.encrypt(b"secret").unwrap();
        let after =
            Cipher::new(&settings("new", &[("new", generate_key()), ("old", old)])).unwrap();
        let moved = after.reencrypt(&stored).unwrap().unwrap();
        assert!(moved.starts_with(&after.current_prefix()), "{moved}");
        assert_eq!(after.decrypt(&moved).unwrap(), b"secret");
        assert_eq!(after.reencrypt(&moved).unwrap(), None);
    }

    #[test]
    fn keys_of_the_wrong_size_or_a_missing_current_key_are_refused() {
        let short = STANDARD.encode([0u8; 16]);
        assert!(Cipher::new(&settings("k1", &[("k1", short)])).is_err());
        assert!(Cipher::new(&settings("k2", &[("k1", generate_key())])).is_err());
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let key = generate_key();
        let cipher = Cipher::new(&settings("k1", &[("k1", key.clone())])).unwrap();
        assert!(!format!("{cipher:?}").contains(&key));
    }
}
