//! `[encryption]`: the key new secrets are written with and every key still readable, given as
//! a list of tables or as one string (the environment's form).

use common::secret::SecretString;
use serde::{Deserialize, Serialize};

/// Encryption at rest: the key used for new writes and every key still readable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EncryptionSettings {
    /// Id of the key used for new writes.
    #[serde(default)]
    pub current: String,
    /// All keys, old ones kept for reading. Also accepted as one string (the environment's
    /// form, `BROKER_ENCRYPTION__KEYS`): a single base64 key, whose id is `current` (`k1` when
    /// none is set), or `id:key` entries separated by commas.
    #[serde(default, deserialize_with = "keys_from_list_or_string")]
    pub keys: Vec<EncryptionKey>,
}

/// Id of a key given without one when `encryption.current` is not set either.
pub const DEFAULT_KEY_ID: &str = "k1";

/// Reads `encryption.keys` as a list of `{id, key}` tables or as one string; an error never
/// repeats the string (it is a secret).
fn keys_from_list_or_string<'de, D>(d: D) -> Result<Vec<EncryptionKey>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<EncryptionKey>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(
                "a list of {id, key} tables, a base64 key, or id:key entries separated by commas",
            )
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    let (id, key) = entry.split_once(':').unwrap_or(("", entry));
                    Ok(EncryptionKey {
                        id: id.trim().to_string(),
                        key: SecretString::new(key.trim()),
                    })
                })
                .collect()
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = seq.next_element::<EncryptionKey>()? {
                keys.push(key);
            }
            Ok(keys)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(Keys)
}

impl EncryptionSettings {
    /// Gives a key written without an id the id `current` (setting `current` to
    /// [`DEFAULT_KEY_ID`] when it is empty).
    pub(super) fn name_unnamed_keys(&mut self) {
        if !self.keys.iter().any(|k| k.id.is_empty()) {
            return;
        }
        if self.current.is_empty() {
            self.current = DEFAULT_KEY_ID.to_string();
        }
        for key in self.keys.iter_mut().filter(|k| k.id.is_empty()) {
            key.id = self.current.clone();
        }
    }
}

/// One AES-256 key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncryptionKey {
    /// Key id, stored beside each value it encrypted.
    pub id: String,
    /// Base64 of 32 random bytes (never logged).
    pub key: SecretString,
}
