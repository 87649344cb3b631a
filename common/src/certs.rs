//! Certificate generation for the internal CA and the services' leaf certificates (what
//! `osbctl certs` and `osbctl up` write, and what tests make at test time), with bounded
//! lifetimes ([`LEAF_VALIDITY_DAYS`], [`CA_VALIDITY_DAYS`]) and renewal from the existing CA
//! ([`renew_bundle`]).
//!
//! Two layouts: [`Layout::Flat`] (every file in one directory: `osbctl up`, where one process
//! runs every service) and [`Layout::PerService`] (what `osbctl certs` writes: `ca/` with the
//! CA key, kept away from the services, and one directory per service holding only `ca.pem`
//! and that service's certificate and key).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Lifetime of a service certificate.
pub const LEAF_VALIDITY_DAYS: i64 = 365;
/// Lifetime of the internal CA.
pub const CA_VALIDITY_DAYS: i64 = 3_650;
/// A certificate expiring within this many days is renewed by [`renew_bundle`] (and
/// `osbctl certs --if-missing`).
pub const RENEW_WITHIN_DAYS: i64 = 30;
/// Common name of the CA `osbctl` makes.
pub const CA_COMMON_NAME: &str = "osb internal CA";
/// Organization of every CA made here.
const CA_ORGANIZATION: &str = "osb";

/// Failure to make or write certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// The existing CA certificate or key cannot be used.
    #[error("the CA in {path}: {message}")]
    Ca {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A certificate authority held in memory.
pub struct CertificateAuthority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone)]
pub struct LeafPem {
    /// Certificate.
    pub cert_pem: String,
    /// Private key (PKCS#8).
    pub key_pem: String,
}

impl CertificateAuthority {
    /// Makes a new self-signed CA, valid for [`CA_VALIDITY_DAYS`].
    pub fn generate(common_name: &str) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let cert = Self::params(common_name).self_signed(&key)?;
        Ok(Self { cert, key })
    }

    /// The CA of an existing `ca.pem` / `ca-key.pem` pair, to issue more certificates that the
    /// holders of that `ca.pem` trust (same subject, same key).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        use rustls_pki_types::pem::PemObject;
        let der =
            rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| {
                CertError::Ca {
                    path: "ca.pem".into(),
                    message: e.to_string(),
                }
            })?;
        let common_name = crate::tls::identity::common_name(&der).ok_or(CertError::Ca {
            path: "ca.pem".into(),
            message: "no common name".into(),
        })?;
        let key = KeyPair::from_pem(key_pem)?;
        let cert = Self::params(&common_name).self_signed(&key)?;
        Ok(Self { cert, key })
    }

    fn params(common_name: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, CA_ORGANIZATION);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        params
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA key in PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a certificate valid for server and client auth for `hosts` (names or IPs), for
    /// [`LEAF_VALIDITY_DAYS`]. Its common name is the identity the services authorize.
    pub fn issue(&self, common_name: &str, hosts: &[String]) -> Result<LeafPem, CertError> {
        self.issue_for(common_name, hosts, Duration::days(LEAF_VALIDITY_DAYS))
    }

    /// [`CertificateAuthority::issue`] with another lifetime (tests make short-lived ones).
    pub fn issue_for(
        &self,
        common_name: &str,
        hosts: &[String],
        lifetime: Duration,
    ) -> Result<LeafPem, CertError> {
        let mut params = CertificateParams::default();
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + lifetime;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.subject_alt_names = hosts
            .iter()
            .map(|h| match h.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(h.clone().try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(LeafPem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The services that get a certificate from `osbctl certs` / `osbctl up`.
pub const SERVICE_NAMES: &[&str] = &["broker", "deployer", "spi-postgres", "spi-keyvalue"];

/// The hosts a loopback-only stack needs in its certificates.
pub fn loopback_hosts() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

/// Where the files of a bundle live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `ca.pem`, `ca-key.pem`, `<name>.pem`, `<name>-key.pem` side by side.
    Flat,
    /// `ca/ca.pem`, `ca/ca-key.pem`; `<name>/ca.pem`, `<name>/<name>.pem`,
    /// `<name>/<name>-key.pem`: a service's directory holds no other key.
    PerService,
}

impl Layout {
    /// Directory of the CA's certificate and key.
    pub fn ca_dir(self, dir: &Path) -> PathBuf {
        match self {
            Self::Flat => dir.to_path_buf(),
            Self::PerService => dir.join("ca"),
        }
    }

    /// Directory of a service's files (`TlsFiles::in_dir(layout.service_dir(..), name)`).
    pub fn service_dir(self, dir: &Path, name: &str) -> PathBuf {
        match self {
            Self::Flat => dir.to_path_buf(),
            Self::PerService => dir.join(name),
        }
    }
}

/// Writes `ca.pem`, `ca-key.pem` and `<name>.pem` / `<name>-key.pem` for each name into `dir`.
/// Keys are written with mode 0600.
pub fn write_bundle(dir: &Path, names: &[&str], hosts: &[String]) -> Result<(), CertError> {
    write_bundle_in(Layout::Flat, dir, names, hosts)
}

/// Writes a new CA and a certificate for each name in `layout` under `dir`.
pub fn write_bundle_in(
    layout: Layout,
    dir: &Path,
    names: &[&str],
    hosts: &[String],
) -> Result<(), CertError> {
    let ca = CertificateAuthority::generate(CA_COMMON_NAME)?;
    let ca_dir = layout.ca_dir(dir);
    create_private_dir(&ca_dir)?;
    write_file(&ca_dir.join("ca.pem"), &ca.cert_pem(), false)?;
    write_file(&ca_dir.join("ca-key.pem"), &ca.key_pem(), true)?;
    let ca_pem = ca.cert_pem();
    for name in names {
        write_leaf(layout, dir, (&ca, &ca_pem), name, hosts)?;
    }
    Ok(())
}

/// Whether `dir` holds a CA in `layout`.
pub fn has_ca(layout: Layout, dir: &Path) -> bool {
    layout.ca_dir(dir).join("ca-key.pem").exists()
}

/// Issues again, from the CA already in `dir`, the certificate of each name that is missing,
/// unreadable or expires within [`RENEW_WITHIN_DAYS`] (every one when `force`). Files are
/// replaced atomically (written beside, then renamed), so a service re-reading them sees the
/// old pair or the new one. Returns the names renewed.
pub fn renew_bundle(
    layout: Layout,
    dir: &Path,
    names: &[&str],
    hosts: &[String],
    force: bool,
) -> Result<Vec<String>, CertError> {
    let ca_dir = layout.ca_dir(dir);
    let read = |file: &str| {
        let path = ca_dir.join(file);
        fs::read_to_string(&path).map_err(|source| CertError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let ca = CertificateAuthority::from_pem(&read("ca.pem")?, &read("ca-key.pem")?)?;
    let ca_pem = read("ca.pem")?;
    let mut renewed = Vec::new();
    for name in names {
        let service_dir = layout.service_dir(dir, name);
        let cert = service_dir.join(format!("{name}.pem"));
        if force || expires_soon(&cert) {
            write_leaf(layout, dir, (&ca, &ca_pem), name, hosts)?;
            renewed.push(name.to_string());
        } else if layout == Layout::PerService {
            write_file(&service_dir.join("ca.pem"), &ca_pem, false)?;
        }
    }
    Ok(renewed)
}

/// Whether the certificate file is missing, unreadable or ends within [`RENEW_WITHIN_DAYS`].
pub fn expires_soon(cert_file: &Path) -> bool {
    use rustls_pki_types::pem::PemObject;
    let Ok(der) = rustls_pki_types::CertificateDer::from_pem_file(cert_file) else {
        return true;
    };
    let Some(end) = crate::tls::identity::not_after_unix(&der) else {
        return true;
    };
    end - OffsetDateTime::now_utc().unix_timestamp() < RENEW_WITHIN_DAYS * 86_400
}

/// Issues `name`'s certificate from `ca` and writes it (and, per service, the CA's certificate
/// as `ca_pem`, the text the other services trust).
fn write_leaf(
    layout: Layout,
    dir: &Path,
    (ca, ca_pem): (&CertificateAuthority, &str),
    name: &str,
    hosts: &[String],
) -> Result<(), CertError> {
    let service_dir = layout.service_dir(dir, name);
    create_private_dir(&service_dir)?;
    if layout == Layout::PerService {
        write_file(&service_dir.join("ca.pem"), ca_pem, false)?;
    }
    let leaf = ca.issue(name, hosts)?;
    // The key first: a service reloading between the two renames sees a mismatched pair,
    // refuses it and keeps serving with the old one until the certificate follows.
    replace_file(
        &service_dir.join(format!("{name}-key.pem")),
        &leaf.key_pem,
        true,
    )?;
    replace_file(
        &service_dir.join(format!("{name}.pem")),
        &leaf.cert_pem,
        false,
    )
}

fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| CertError::Io {
            path: dir.display().to_string(),
            source,
        })
}

/// Writes `path` through a temporary file renamed over it.
fn replace_file(path: &Path, contents: &str, private: bool) -> Result<(), CertError> {
    let tmp = path.with_extension("pem.new");
    write_file(&tmp, contents, private)?;
    fs::rename(&tmp, path).map_err(|source| CertError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), CertError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CertError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    opts.mode(if private { 0o600 } else { 0o644 });
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsFiles;

    #[test]
    fn a_written_bundle_loads_as_server_and_client_config() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), &["broker", "deployer"], &loopback_hosts()).unwrap();
        let files = TlsFiles::in_dir(dir.path(), "deployer");
        files.server_config().unwrap();
        files.client_config().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("deployer-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_per_service_layout_keeps_the_ca_key_and_other_keys_out_of_a_service_directory() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle_in(
            Layout::PerService,
            dir.path(),
            SERVICE_NAMES,
            &loopback_hosts(),
        )
        .unwrap();
        assert!(dir.path().join("ca/ca-key.pem").exists());
        for name in SERVICE_NAMES {
            let service_dir = Layout::PerService.service_dir(dir.path(), name);
            let mut files: Vec<String> = fs::read_dir(&service_dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            let mut expected = [
                "ca.pem".to_string(),
                format!("{name}-key.pem"),
                format!("{name}.pem"),
            ];
            expected.sort();
            assert_eq!(files, expected);
            TlsFiles::in_dir(&service_dir, name)
                .server_config()
                .unwrap();
        }
    }

    #[test]
    fn renewal_reissues_from_the_same_ca_only_what_is_near_its_end_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle_in(
            Layout::PerService,
            dir.path(),
            &["broker", "deployer"],
            &loopback_hosts(),
        )
        .unwrap();
        let cert = |name: &str| {
            fs::read_to_string(dir.path().join(name).join(format!("{name}.pem"))).unwrap()
        };
        let (broker, deployer) = (cert("broker"), cert("deployer"));
        // Nothing is near its end.
        let renewed = renew_bundle(
            Layout::PerService,
            dir.path(),
            &["broker", "deployer"],
            &loopback_hosts(),
            false,
        )
        .unwrap();
        assert!(renewed.is_empty(), "{renewed:?}");
        // A certificate near its end (issued for 10 days) is renewed; the other is kept.
        let ca = CertificateAuthority::from_pem(
            &fs::read_to_string(dir.path().join("ca/ca.pem")).unwrap(),
            &fs::read_to_string(dir.path().join("ca/ca-key.pem")).unwrap(),
        )
        .unwrap();
        let short = ca
            .issue_for("broker", &loopback_hosts(), Duration::days(10))
            .unwrap();
        fs::write(dir.path().join("broker/broker.pem"), &short.cert_pem).unwrap();
        fs::write(dir.path().join("broker/broker-key.pem"), &short.key_pem).unwrap();
        let renewed = renew_bundle(
            Layout::PerService,
            dir.path(),
            &["broker", "deployer"],
            &loopback_hosts(),
            false,
        )
        .unwrap();
        assert_eq!(renewed, ["broker"]);
        assert_ne!(cert("broker"), broker);
        assert_eq!(cert("deployer"), deployer);
        // Forced: everything; and what was issued still chains to the CA the others trust.
        let renewed = renew_bundle(
            Layout::PerService,
            dir.path(),
            &["broker", "deployer"],
            &loopback_hosts(),
            true,
        )
        .unwrap();
        assert_eq!(renewed, ["broker", "deployer"]);
        assert_ne!(cert("deployer"), deployer);
        for name in ["broker", "deployer"] {
            let files = TlsFiles::in_dir(&dir.path().join(name), name);
            files.server_config().unwrap();
            files.client_config().unwrap();
        }
    }
}
