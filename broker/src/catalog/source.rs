//! Where the catalog's SPIs come from: the settings file, read again at each refresh (its
//! quotas too), and the clients the broker calls them with.

use crate::config::{QuotaSettings, Settings, SpiSettings};
use anyhow::Context as _;
use common::client::InternalClient;
use common::spi::SpiClient;
use common::tls::TlsFiles;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One configured SPI with its client.
#[derive(Debug, Clone)]
pub struct NamedSpi {
    /// Name from the settings.
    pub name: String,
    /// Typed client.
    pub client: SpiClient,
}

/// Where the SPI list comes from: the settings file (re-read with the environment at each
/// refresh) and what the clients of newly listed SPIs are built with.
#[derive(Debug, Clone)]
pub struct SpiSource {
    /// The settings file; `None`: the list given at start never changes.
    pub file: Option<PathBuf>,
    /// The broker's client identity.
    pub tls: TlsFiles,
    /// Timeout of one call.
    pub timeout: Duration,
}

impl SpiSource {
    /// The client of `spi`.
    pub fn client(&self, spi: &SpiSettings) -> anyhow::Result<NamedSpi> {
        let client = InternalClient::new(&spi.url, &self.tls, self.timeout)
            .with_context(|| format!("client of SPI {}", spi.name))?;
        Ok(NamedSpi {
            name: spi.name.clone(),
            client: SpiClient::new(client),
        })
    }

    /// The SPIs the settings name now, reusing the clients of `known` ones whose URL is the
    /// same, and the quotas the settings hold now; `None` without a settings file.
    pub(super) fn reload(
        &self,
        known: &[Arc<NamedSpi>],
    ) -> Option<anyhow::Result<(Vec<Arc<NamedSpi>>, QuotaSettings)>> {
        let file = self.file.as_deref()?;
        let load = || {
            let settings = Settings::load(Some(file))
                .with_context(|| format!("reading the SPI list from {}", file.display()))?;
            let mut spis: Vec<Arc<NamedSpi>> = Vec::new();
            for spi in &settings.spis {
                if spis.iter().any(|s| s.name == spi.name) {
                    tracing::error!(spi = %spi.name, "SPI listed twice in the settings; the later entry is ignored");
                    continue;
                }
                let same = known.iter().find(|k| {
                    k.name == spi.name && k.client.base_url() == spi.url.trim_end_matches('/')
                });
                spis.push(match same {
                    Some(k) => Arc::clone(k),
                    None => Arc::new(self.client(spi)?),
                });
            }
            Ok((spis, settings.quotas))
        };
        Some(load())
    }
}
