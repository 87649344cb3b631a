//! Re-encryption of the stored secrets under the current key (`broker reencrypt`, the last
//! step of an encryption key change): rewrites every stored secret not under
//! `encryption.current`, so older keys can then be removed from the settings. Not to be
//! confused with OSB binding rotation (`predecessor_binding_id`).

use crate::crypto::Cipher;
use crate::domain::operation::OperationPayload;
use crate::store::{SecretColumn, Store, StoredSecret};
use anyhow::Context as _;

/// Passes over the database before giving up on values that keep changing under us.
const PASSES: usize = 3;

/// What a re-encryption did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reencryption {
    /// Values rewritten under the current key.
    pub rewritten: usize,
    /// Values still under another key at the end (changing faster than we could rewrite them;
    /// run again).
    pub remaining: usize,
}

/// The value to write instead of `secret`, or `None` when it is under the current key.
fn reencrypted(cipher: &Cipher, secret: &StoredSecret) -> anyhow::Result<Option<String>> {
    let what = || format!("{:?} of {}", secret.column, secret.id);
    match secret.column {
        SecretColumn::InstanceSpec | SecretColumn::BindingCredentials => {
            cipher.reencrypt(&secret.value).with_context(what)
        }
        SecretColumn::OperationPayload => {
            let mut payload = OperationPayload::decode(&secret.value);
            let Some(enc) = &payload.new_spec_enc else {
                return Ok(None);
            };
            let Some(moved) = cipher.reencrypt(enc).with_context(what)? else {
                return Ok(None);
            };
            payload.new_spec_enc = Some(moved);
            Ok(Some(payload.encode()))
        }
    }
}

/// Rewrites every secret not under the current key. Safe beside running brokers: each value
/// is replaced only if it is still the one read, and fresh writes of brokers that already use
/// the new current key need no rewrite.
pub async fn reencrypt_all(store: &Store, cipher: &Cipher) -> anyhow::Result<Reencryption> {
    let mut report = Reencryption::default();
    let prefix = cipher.current_prefix();
    for _ in 0..PASSES {
        let stale = store.secrets_not_under(&prefix).await?;
        let mut pending = 0;
        for secret in &stale {
            let Some(new) = reencrypted(cipher, secret)? else {
                continue;
            };
            if store.replace_secret(secret, new).await? {
                report.rewritten += 1;
            } else {
                pending += 1;
            }
        }
        report.remaining = pending;
        if pending == 0 {
            break;
        }
    }
    Ok(report)
}
