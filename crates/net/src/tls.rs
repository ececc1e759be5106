//! TLS for `mqtts://` brokers: which certificate authorities a client trusts
//! ([`TlsTrust`]), and the `rustls` client configuration built from that.
//!
//! This module owns the TLS choices, so they are made in one place:
//! - **rustls with the `ring` provider**, passed to the configuration explicitly
//!   (`ClientConfig::builder_with_provider`): no process-wide default provider is installed
//!   or needed, and nothing is built with aws-lc-rs (no cmake, no NASM).
//! - **TLS 1.3 and 1.2**, rustls' safe defaults (cipher suites and key exchange groups).
//! - **No client certificates**: devices authenticate with a username and password inside
//!   the TLS tunnel ([`crate::Credentials`]).
//! - **Trust**: the CA certificate(s) of [`TlsTrust`] alone when given (a private CA for a
//!   self-hosted broker); otherwise the operating system's trust store, read with
//!   `rustls-native-certs` (on Linux the OpenSSL locations, honouring `SSL_CERT_FILE` and
//!   `SSL_CERT_DIR`; the Keychain on macOS; the Windows certificate store), which is what a
//!   broker with a certificate from a public CA needs and what an administrator controls.
//! - The server certificate must name the URL's host: a DNS name, or an IP address in its
//!   subject alternative names.

use std::fmt;
use std::sync::Arc;

use rumqttc::{TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Error, Result};
use crate::url::BrokerUrl;

/// The certificate authorities a client trusts for `mqtts://` brokers, as PEM: one or more
/// `-----BEGIN CERTIFICATE-----` blocks (other blocks, such as keys, are ignored).
///
/// Only these CAs are trusted when it is set; see the module docs for what happens when
/// [`crate::ClientSettings::tls`] is `None`. The PEM is checked when the connection options
/// are built ([`crate::mqtt_options`]).
#[derive(Clone, PartialEq, Eq)]
pub struct TlsTrust {
    ca_pem: Vec<u8>,
}

impl TlsTrust {
    /// Trusts the CA certificate(s) in `pem` (e.g. the contents of the broker operator's
    /// `ca.crt`).
    #[must_use]
    pub fn from_ca_pem(pem: impl Into<Vec<u8>>) -> Self {
        Self { ca_pem: pem.into() }
    }

    /// The PEM bytes as given.
    #[must_use]
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }
}

impl fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTrust")
            .field("ca_pem", &format_args!("{} bytes", self.ca_pem.len()))
            .finish()
    }
}

/// The `rumqttc` transport for `url`: plain TCP for `mqtt://` (refusing TLS trust, which
/// would be silently unused), TLS with the trusted roots for `mqtts://`.
pub(crate) fn transport(url: &BrokerUrl, trust: Option<&TlsTrust>) -> Result<Transport> {
    if !url.is_tls() {
        return match trust {
            None => Ok(Transport::Tcp),
            Some(_) => Err(tls_error(
                url,
                "a CA certificate to trust is set but the URL is mqtt:// (plain TCP, no TLS); \
                 write mqtts:// to connect over TLS",
            )),
        };
    }
    if ServerName::try_from(url.host()).is_err() {
        return Err(tls_error(
            url,
            "the host is not a name a TLS certificate can carry (a DNS name or an IP address)",
        ));
    }
    let roots = match trust {
        Some(trust) => roots_from_pem(url, trust)?,
        None => roots_from_system(url, || {
            let found = rustls_native_certs::load_native_certs();
            let errors = found.errors.iter().map(ToString::to_string).collect();
            (found.certs, errors)
        })?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(url, format!("the TLS provider cannot be used: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Transport::Tls(TlsConfiguration::Rustls(Arc::new(config))))
}

/// The CA certificates of `trust`, every one of which must be usable as a trust anchor.
fn roots_from_pem(url: &BrokerUrl, trust: &TlsTrust) -> Result<RootCertStore> {
    let mut certs = Vec::new();
    for (n, cert) in CertificateDer::pem_slice_iter(trust.ca_pem()).enumerate() {
        let cert = cert.map_err(|e| {
            tls_error(
                url,
                format!(
                    "the CA certificate PEM is malformed after {n} certificate(s): {e}; pass \
                     the contents of the CA's certificate file (-----BEGIN CERTIFICATE-----)"
                ),
            )
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(tls_error(
            url,
            "the CA certificate PEM holds no -----BEGIN CERTIFICATE----- block",
        ));
    }
    let mut roots = RootCertStore::empty();
    let total = certs.len();
    for (n, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            tls_error(
                url,
                format!(
                    "CA certificate {} of {total} in the PEM cannot be a trust anchor: {e}",
                    n + 1
                ),
            )
        })?;
    }
    Ok(roots)
}

/// The system's trusted CAs, as `load` finds them (certificates, and errors met on the
/// way); an empty store is an error, since no server could then be trusted.
fn roots_from_system(
    url: &BrokerUrl,
    load: impl FnOnce() -> (Vec<CertificateDer<'static>>, Vec<String>),
) -> Result<RootCertStore> {
    let (certs, errors) = load();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        let mut reason = String::from(
            "no trusted CA certificates were found on this system (on Linux: install \
             ca-certificates, or set SSL_CERT_FILE); pass the broker's CA certificate instead",
        );
        if !errors.is_empty() {
            reason.push_str(" (errors while looking: ");
            reason.push_str(&errors.join("; "));
            reason.push(')');
        }
        return Err(tls_error(url, reason));
    }
    Ok(roots)
}

fn tls_error(url: &BrokerUrl, reason: impl Into<String>) -> Error {
    Error::Tls {
        url: url.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
pub(crate) mod tests;
