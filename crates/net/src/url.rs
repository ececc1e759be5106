//! Broker URLs: the `mqtt://host[:port]` and `mqtts://host[:port]` strings users type and
//! configuration files hold.
//!
//! This module owns parsing and printing them. The parser is strict on purpose: a URL that
//! carries something Tandem would silently ignore (a path, a query) is refused with the
//! reason, and so are credentials: a URL gets logged and shown, so the username and password
//! travel separately ([`crate::ClientSettings::credentials`]).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The port of `mqtt://` URLs that do not name one (the IANA port for MQTT without TLS).
pub const DEFAULT_PORT: u16 = 1883;

/// The port of `mqtts://` URLs that do not name one (the IANA port for MQTT over TLS).
pub const DEFAULT_TLS_PORT: u16 = 8883;

/// Longest host name accepted (the DNS limit).
const MAX_HOST_LEN: usize = 253;

/// How a client reaches the broker: plain TCP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `mqtt://`: MQTT over plain TCP (for a trusted network or loopback).
    Mqtt,
    /// `mqtts://`: MQTT over TLS; the server certificate is checked against the roots of
    /// [`crate::ClientSettings::tls`].
    Mqtts,
}

impl Scheme {
    /// The scheme as written in URLs: `mqtt` or `mqtts`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Mqtts => "mqtts",
        }
    }

    /// The port a URL of this scheme means when it names none.
    #[must_use]
    pub fn default_port(self) -> u16 {
        match self {
            Self::Mqtt => DEFAULT_PORT,
            Self::Mqtts => DEFAULT_TLS_PORT,
        }
    }
}

/// A parsed `mqtt://host:port` or `mqtts://host:port` broker address.
///
/// The host is kept as written (a DNS name, an IPv4 address or an IPv6 address without its
/// brackets); the port is never 0. For `mqtts://` the host is also the name the server
/// certificate must carry (a DNS name, or an IP address in its subject alternative names).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerUrl {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port][/]` or `mqtts://host[:port][/]`. The scheme is
    /// case-insensitive; the port defaults to [`DEFAULT_PORT`] (`mqtt`) or
    /// [`DEFAULT_TLS_PORT`] (`mqtts`); IPv6 hosts are written in brackets
    /// (`mqtt://[::1]:1883`).
    ///
    /// # Errors
    /// [`Error::UnsupportedScheme`] for any other scheme, [`Error::BadUrl`] for anything else
    /// that is not exactly a host and an optional port (credentials included: pass them in
    /// [`crate::ClientSettings::credentials`]).
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &'static str| Error::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(
                "missing scheme: expected mqtt://host[:port] or mqtts://host[:port]",
            ));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" => Scheme::Mqtt,
            "mqtts" => Scheme::Mqtts,
            "ssl" | "tls" => {
                return Err(Error::UnsupportedScheme {
                    url: url.to_owned(),
                    scheme: scheme.to_owned(),
                    reason: "for MQTT over TLS write mqtts://host[:port]",
                });
            }
            "ws" | "wss" => {
                return Err(Error::UnsupportedScheme {
                    url: url.to_owned(),
                    scheme: scheme.to_owned(),
                    reason: "MQTT over WebSocket is not supported; use mqtt:// or mqtts://",
                });
            }
            _ => {
                return Err(Error::UnsupportedScheme {
                    url: url.to_owned(),
                    scheme: scheme.to_owned(),
                    reason: "a Tandem broker URL looks like mqtt://host[:port] or \
                             mqtts://host[:port]",
                });
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') {
            return Err(bad("a path is not allowed after the host and port"));
        }
        if authority.contains('?') || authority.contains('#') {
            return Err(bad("a query or fragment is not allowed"));
        }
        if authority.contains('@') {
            return Err(bad(
                "credentials are not allowed in a broker URL (URLs get logged and shown): \
                 pass the username and password separately",
            ));
        }
        if authority.is_empty() {
            return Err(bad("the host is missing"));
        }
        let (host, port) = split_host_port(authority).map_err(bad)?;
        let port = match port {
            None => scheme.default_port(),
            Some(digits) => parse_port(digits).map_err(bad)?,
        };
        Ok(Self { scheme, host, port })
    }

    /// The `mqtt://` URL of a broker listening on `addr` (e.g. an embedded broker on a free
    /// port).
    ///
    /// # Errors
    /// [`Error::BadUrl`] if the port is 0 (nothing can connect to it).
    pub fn from_socket_addr(addr: SocketAddr) -> Result<Self> {
        Self::from_socket_addr_with(Scheme::Mqtt, addr)
    }

    /// The URL of a broker listening on `addr` with `scheme` (`mqtts://127.0.0.1:port` for
    /// a TLS listener whose certificate names the IP address).
    ///
    /// # Errors
    /// [`Error::BadUrl`] if the port is 0 (nothing can connect to it).
    pub fn from_socket_addr_with(scheme: Scheme, addr: SocketAddr) -> Result<Self> {
        if addr.port() == 0 {
            return Err(Error::BadUrl {
                url: addr.to_string(),
                reason: "port 0 is not a port a client can connect to",
            });
        }
        Ok(Self {
            scheme,
            host: addr.ip().to_string(),
            port: addr.port(),
        })
    }

    /// Plain TCP or TLS.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether the connection runs over TLS (`mqtts://`).
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Mqtts
    }

    /// The host: a DNS name, an IPv4 address, or an IPv6 address without brackets.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port (never 0).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// One or more brokers of the same deployment (the nodes of a cluster sharing sessions), in
/// the order a client tries them: written `mqtt://a:1883,mqtt://b:1883`. A client connects to
/// the first and fails over to the next when the one it is on is unreachable or dies,
/// keeping its client id and session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerList {
    urls: Vec<BrokerUrl>,
}

impl BrokerList {
    /// Parses one broker URL, or several separated by commas (spaces around them are fine).
    ///
    /// # Errors
    /// As [`BrokerUrl::parse`] for the first URL that does not parse; [`Error::BadUrl`] for an
    /// empty list, an empty entry or a broker named twice.
    pub fn parse(list: &str) -> Result<Self> {
        let bad = |reason: &'static str| Error::BadUrl {
            url: list.to_owned(),
            reason,
        };
        let mut urls: Vec<BrokerUrl> = Vec::new();
        for entry in list.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(bad(
                    "an empty entry in the broker list (write mqtt://a:1883,mqtt://b:1883)",
                ));
            }
            let url = BrokerUrl::parse(entry)?;
            if urls.contains(&url) {
                return Err(bad("the broker list names a broker twice"));
            }
            urls.push(url);
        }
        Ok(Self { urls })
    }

    /// The list of `urls` in their order, each once; `None` when there is none.
    #[must_use]
    pub fn from_urls(urls: impl IntoIterator<Item = BrokerUrl>) -> Option<Self> {
        let mut list: Vec<BrokerUrl> = Vec::new();
        for url in urls {
            if !list.contains(&url) {
                list.push(url);
            }
        }
        (!list.is_empty()).then_some(Self { urls: list })
    }

    /// The brokers, in the order they are tried (never empty).
    #[must_use]
    pub fn urls(&self) -> &[BrokerUrl] {
        &self.urls
    }
}

impl From<BrokerUrl> for BrokerList {
    fn from(url: BrokerUrl) -> Self {
        Self { urls: vec![url] }
    }
}

impl FromStr for BrokerList {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// The URLs separated by commas, as [`BrokerList::parse`] reads them.
impl fmt::Display for BrokerList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, url) in self.urls.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            fmt::Display::fmt(url, f)?;
        }
        Ok(())
    }
}

impl FromStr for BrokerUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_str();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Splits `host[:port]` or `[v6][:port]`, checking the host.
fn split_host_port(authority: &str) -> Result<(String, Option<&str>), &'static str> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err("an IPv6 host is missing its closing `]`");
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err("the bracketed host is not an IPv6 address");
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err("only `:port` may follow an IPv6 host"),
            },
        };
        return Ok((inside.to_owned(), port));
    }
    if authority.matches(':').count() > 1 {
        return Err("an IPv6 host must be written in brackets, e.g. mqtt://[::1]:1883");
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    check_host(host)?;
    Ok((host.to_owned(), port))
}

/// A DNS name or IPv4 address: letters, digits, `-`, `_` and `.`, at most 253 bytes.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("the host is missing");
    }
    if host.len() > MAX_HOST_LEN {
        return Err("the host is longer than 253 characters");
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("the host may only hold letters, digits, `-`, `_` and `.`");
    }
    if host.starts_with('.') || host.ends_with("..") || host.contains("..") {
        return Err("the host has an empty label");
    }
    // Something that looks like an IPv4 address must be one.
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') && host.parse::<IpAddr>().is_err() {
        return Err("the host looks like an IPv4 address but is not one");
    }
    Ok(())
}

/// A decimal port in 1..=65535.
fn parse_port(digits: &str) -> Result<u16, &'static str> {
    if digits.is_empty() {
        return Err("the port is empty after `:`");
    }
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("the port must be a decimal number");
    }
    match digits.parse::<u16>() {
        Ok(0) => Err("port 0 is not a port a client can connect to"),
        Ok(port) => Ok(port),
        Err(_) => Err("the port is larger than 65535"),
    }
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod tests;
