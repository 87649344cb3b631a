//! Mutual TLS from PEM files: one [`TlsFiles`] (CA, certificate, key) yields both the server
//! config (which refuses any client without a certificate from that CA at the handshake) and
//! the client config (which presents the certificate and trusts only that CA).
//!
//! The certificate and key are re-read when their files change ([`ReloadingIdentity`]), so
//! renewed certificates are used by new connections without a restart. Which CA-issued
//! identities may call a service is [`TlsFiles::allowed_clients`], enforced by the internal
//! services' edge (crate `service-edge`, module `authz`).

pub mod identity;

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Failure to load TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {path}: {message}")]
    Pem {
        /// File.
        path: PathBuf,
        /// Cause.
        message: String,
    },
    /// rustls refused the material.
    #[error("invalid TLS material: {0}")]
    Rustls(String),
}

/// Paths of the PEM files of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    /// The internal CA's certificate.
    pub ca_file: PathBuf,
    /// This service's certificate (server and client auth).
    pub cert_file: PathBuf,
    /// This service's private key.
    pub key_file: PathBuf,
    /// The identities (certificate common names) allowed to call this service; every other
    /// certificate from the CA is answered 403. Also accepted as one comma-separated string
    /// (`…_TLS__ALLOWED_CLIENTS=broker,ops`).
    #[serde(
        default = "default_allowed_clients",
        deserialize_with = "list_or_comma_separated"
    )]
    pub allowed_clients: Vec<String>,
}

/// The identity of the broker's certificate: the one caller the deployer and the SPIs accept
/// by default.
pub const BROKER_IDENTITY: &str = "broker";

fn default_allowed_clients() -> Vec<String> {
    vec![BROKER_IDENTITY.to_string()]
}

fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        One(String),
    }
    Ok(match Form::deserialize(d)? {
        Form::List(list) => list,
        Form::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// The one crypto provider of the system (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs the crypto provider as the process default; call once in each `main`.
pub fn install_default_provider() {
    // A second call (tests, `osbctl up` starting several services) finds it installed: fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl TlsFiles {
    /// The layout `osbctl certs` writes: `ca.pem`, `<name>.pem`, `<name>-key.pem` in `dir`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Self {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join(format!("{name}.pem")),
            key_file: dir.join(format!("{name}-key.pem")),
            allowed_clients: default_allowed_clients(),
        }
    }

    fn roots(&self) -> Result<RootCertStore, TlsError> {
        roots(&self.ca_file)
    }

    fn identity(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let chain = certs(&self.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| TlsError::Pem {
            path: self.key_file.clone(),
            message: e.to_string(),
        })?;
        Ok((chain, key))
    }

    /// Server config requiring a client certificate issued by the CA; the server's own
    /// certificate is re-read when its files change.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let provider = provider();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()?), provider.clone())
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let resolver = ReloadingIdentity::load(self)?;
        Ok(rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(resolver)))
    }

    /// Client config presenting this certificate (re-read when its files change) and trusting
    /// only the CA.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let resolver = ReloadingIdentity::load(self)?;
        Ok(rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_root_certificates(self.roots()?)
            .with_client_cert_resolver(Arc::new(resolver)))
    }

    /// Client config trusting the CA but presenting no certificate (what a stranger does).
    pub fn anonymous_client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        trusting_only(&self.ca_file)
    }
}

/// Client config trusting only the CA certificates in the PEM file `ca_file` (at least one),
/// presenting no certificate: a client of a server outside this system (a BOSH Director).
pub fn trusting_only(ca_file: &Path) -> Result<rustls::ClientConfig, TlsError> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots(ca_file)?)
        .with_no_client_auth())
}

/// The certificates of the PEM file `ca_file` as trust roots.
fn roots(ca_file: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca_file)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
    }
    Ok(roots)
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |message: String| TlsError::Pem {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("no certificate in file".into()));
    }
    Ok(certs)
}

/// The size and modification time of the certificate and key files: what tells a renewal.
type Stamp = [Option<(SystemTime, u64)>; 2];

/// A certificate and key read from their files, and read again on the next handshake after
/// either file changed. A pair that cannot be loaded (mid-renewal, mismatched) is logged and
/// the previous pair kept until the files change again.
#[derive(Debug)]
pub struct ReloadingIdentity {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<(Stamp, Arc<CertifiedKey>)>,
}

impl ReloadingIdentity {
    /// Loads the pair named by `files` (an error if it cannot be loaded now).
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let provider = provider();
        let stamp = stamp(&files.cert_file, &files.key_file);
        let key = certified_key(files, &provider)?;
        Ok(Self {
            cert_file: files.cert_file.clone(),
            key_file: files.key_file.clone(),
            provider,
            current: Mutex::new((stamp, key)),
        })
    }

    /// The current pair, re-read first if the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamp(&self.cert_file, &self.key_file);
        if now != current.0 {
            let files = TlsFiles {
                cert_file: self.cert_file.clone(),
                key_file: self.key_file.clone(),
                ca_file: PathBuf::new(),
                allowed_clients: Vec::new(),
            };
            match certified_key(&files, &self.provider) {
                Ok(key) => {
                    tracing::info!(cert_file = %self.cert_file.display(), "certificate reloaded");
                    *current = (now, key);
                }
                Err(e) => {
                    // Tried again when the files change again (the second half of a renewal).
                    tracing::warn!(error = %e, "the changed certificate files cannot be loaded (yet); keeping the previous certificate");
                    current.0 = now;
                }
            }
        }
        Arc::clone(&current.1)
    }
}

impl ResolvesServerCert for ReloadingIdentity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for ReloadingIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    [one(cert), one(key)]
}

fn certified_key(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let (chain, key) = files.identity()?;
    let key = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok(Arc::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{loopback_hosts, renew_bundle, write_bundle, Layout};

    fn served(identity: &ReloadingIdentity) -> Vec<u8> {
        identity.current().cert[0].to_vec()
    }

    #[test]
    fn a_renewed_pair_is_picked_up_and_a_broken_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), &["broker"], &loopback_hosts()).unwrap();
        let files = TlsFiles::in_dir(dir.path(), "broker");
        let identity = ReloadingIdentity::load(&files).unwrap();
        let first = served(&identity);
        assert_eq!(served(&identity), first);

        renew_bundle(
            Layout::Flat,
            dir.path(),
            &["broker"],
            &loopback_hosts(),
            true,
        )
        .unwrap();
        let second = served(&identity);
        assert_ne!(second, first, "the renewed certificate is not used");
        assert_eq!(second, certs(&files.cert_file).unwrap()[0].to_vec());

        // A half-written certificate: the previous pair stays in use...
        let good = std::fs::read(&files.cert_file).unwrap();
        std::fs::write(&files.cert_file, "-----BEGIN CERTIFICATE-----\nMIIB").unwrap();
        assert_eq!(served(&identity), second);
        assert_eq!(served(&identity), second);
        // ...until the file is whole again.
        renew_bundle(
            Layout::Flat,
            dir.path(),
            &["broker"],
            &loopback_hosts(),
            true,
        )
        .unwrap();
        assert_ne!(std::fs::read(&files.cert_file).unwrap(), good);
        let third = served(&identity);
        assert_ne!(third, second);
        assert_eq!(third, certs(&files.cert_file).unwrap()[0].to_vec());
    }

    #[test]
    fn allowed_clients_default_to_the_broker_and_read_a_list_or_a_comma_separated_string() {
        let files = TlsFiles::in_dir(Path::new("certs"), "deployer");
        assert_eq!(files.allowed_clients, [BROKER_IDENTITY]);
        let from_list: TlsFiles = serde_json::from_value(serde_json::json!({
            "ca_file": "a", "cert_file": "b", "key_file": "c", "allowed_clients": ["broker", "ops"]
        }))
        .unwrap();
        let from_string: TlsFiles = serde_json::from_value(serde_json::json!({
            "ca_file": "a", "cert_file": "b", "key_file": "c", "allowed_clients": "broker, ops"
        }))
        .unwrap();
        assert_eq!(from_list.allowed_clients, ["broker", "ops"]);
        assert_eq!(from_string.allowed_clients, from_list.allowed_clients);
    }
}
