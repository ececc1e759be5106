//! Broker URLs: the `mqtt://host[:port]` strings users type and configuration files hold.
//!
//! This module owns parsing and printing them. The parser is strict on purpose: a URL that
//! carries something Tandem would silently ignore (credentials, a path, a query) is refused
//! with the reason, and `mqtts://` (TLS) is recognized and reported as not supported yet.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The port of `mqtt://` URLs that do not name one (the IANA port for MQTT without TLS).
pub const DEFAULT_PORT: u16 = 1883;

/// Longest host name accepted (the DNS limit).
const MAX_HOST_LEN: usize = 253;

/// A parsed `mqtt://host:port` broker address.
///
/// The host is kept as written (a DNS name, an IPv4 address or an IPv6 address without its
/// brackets); the port is never 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerUrl {
    host: String,
    port: u16,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port][/]`. The scheme is case-insensitive; the port defaults to
    /// [`DEFAULT_PORT`]; IPv6 hosts are written in brackets (`mqtt://[::1]:1883`).
    ///
    /// # Errors
    /// [`Error::UnsupportedScheme`] for `mqtts://` and any other scheme, [`Error::BadUrl`] for
    /// anything else that is not exactly a host and an optional port.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &'static str| Error::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("missing scheme: expected mqtt://host[:port]"));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "mqtt" => {}
            "mqtts" | "ssl" => {
                return Err(Error::UnsupportedScheme {
                    url: url.to_owned(),
                    scheme: scheme.to_owned(),
                    reason: "MQTT over TLS is not supported yet; use mqtt:// on a trusted \
                             network or through a TLS tunnel",
                });
            }
            "ws" | "wss" => {
                return Err(Error::UnsupportedScheme {
                    url: url.to_owned(),
                    scheme: scheme.to_owned(),
                    reason: "MQTT over WebSocket is not supported; use mqtt://",
                });
            }
            _ => {
                return Err(Error::UnsupportedScheme {
                    url: url.to_owned(),
                    scheme: scheme.to_owned(),
                    reason: "a Tandem broker URL looks like mqtt://host[:port]",
                });
            }
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') {
            return Err(bad("a path is not allowed after the host and port"));
        }
        if authority.contains('?') || authority.contains('#') {
            return Err(bad("a query or fragment is not allowed"));
        }
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        if authority.is_empty() {
            return Err(bad("the host is missing"));
        }
        let (host, port) = split_host_port(authority).map_err(bad)?;
        let port = match port {
            None => DEFAULT_PORT,
            Some(digits) => parse_port(digits).map_err(bad)?,
        };
        Ok(Self { host, port })
    }

    /// The URL of a broker listening on `addr` (e.g. an embedded broker on a free port).
    ///
    /// # Errors
    /// [`Error::BadUrl`] if the port is 0 (nothing can connect to it).
    pub fn from_socket_addr(addr: SocketAddr) -> Result<Self> {
        if addr.port() == 0 {
            return Err(Error::BadUrl {
                url: addr.to_string(),
                reason: "port 0 is not a port a client can connect to",
            });
        }
        Ok(Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        })
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

impl FromStr for BrokerUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "mqtt://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "mqtt://{}:{}", self.host, self.port)
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
