//! Certificate generation for the internal CA and the services' leaf certificates (what
//! `osbctl certs` and `osbctl up` write, and what tests make at test time).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

/// Failure to make or write certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
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
    /// Makes a new self-signed CA.
    pub fn generate(common_name: &str) -> Result<Self, CertError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "osb");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self { cert, key })
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA key in PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a certificate valid for server and client auth for `hosts` (names or IPs).
    pub fn issue(&self, common_name: &str, hosts: &[String]) -> Result<LeafPem, CertError> {
        let mut params = CertificateParams::default();
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

/// Writes `ca.pem`, `ca-key.pem` and `<name>.pem` / `<name>-key.pem` for each name into `dir`.
/// Keys are written with mode 0600.
pub fn write_bundle(dir: &Path, names: &[&str], hosts: &[String]) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let ca = CertificateAuthority::generate("osb internal CA")?;
    write_file(&dir.join("ca.pem"), &ca.cert_pem(), false)?;
    write_file(&dir.join("ca-key.pem"), &ca.key_pem(), true)?;
    for name in names {
        let leaf = ca.issue(name, hosts)?;
        write_file(&dir.join(format!("{name}.pem")), &leaf.cert_pem, false)?;
        write_file(&dir.join(format!("{name}-key.pem")), &leaf.key_pem, true)?;
    }
    Ok(())
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
}
