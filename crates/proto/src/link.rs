//! Pairing links: what a desktop's QR code holds.
//!
//! Multi-device mode (the default):
//! `tandem://link?v=1&ref=REF&dh=X25519&sig=ED25519&secret=SECRET&exp=MS&broker=URL&name=NAME&platform=PLATFORM`
//!
//! Bridge mode:
//! `tandem://link?v=1&mode=bridge&ref=REF&dh=X25519&bridge=X25519&secret=SECRET&exp=MS&broker=URL&name=NAME&platform=PLATFORM`
//!
//! - `mode`: absent for multi-device mode (so every older link still parses), `bridge` for a
//!   desktop that links in bridge mode.
//! - `ref`: the pairing reference, 16 random bytes in lowercase base32 without padding (26
//!   characters); it names the rendezvous topic `tandem/v1/pair/{ref}`.
//! - `dh`, `sig`: in multi-device mode the new device's X25519 and Ed25519 public keys,
//!   base64url without padding. In bridge mode `dh` is a one-off X25519 key the pairing
//!   messages are sealed to (used for nothing else), and there is no `sig`.
//! - `bridge`: in bridge mode only, the desktop's bridge public key (the X25519 static key of
//!   the bridge's Noise handshake, `tandem_bridge::PublicKey`), base64url without padding.
//! - `secret`: the one-time link secret, 32 random bytes, base64url without padding. Only
//!   someone who saw the code knows it; the phone authenticates its offer with it.
//! - `exp`: when this code stops being valid (ms since the Unix epoch), so that a phone can
//!   refuse a stale code before going online.
//! - `broker`, `name`, `platform`: percent-encoded UTF-8.
//!
//! Parsing is strict: the exact prefix, version 1, every parameter of the link's mode exactly
//! once, nothing unknown or of the other mode, each field valid. Every refusal names the field.

use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use tandem_crypto::certificate::{MAX_DEVICE_NAME_LEN, MAX_PLATFORM_LEN};
use tandem_crypto::{CryptoRng, DevicePublicKeys};
use x25519_dalek::{PublicKey as XPublicKey, StaticSecret as XStaticSecret};
use zeroize::Zeroizing;

/// The prefix every pairing link starts with.
pub const LINK_PREFIX: &str = "tandem://link?";
/// Longest pairing link accepted, in bytes.
pub const MAX_LINK_LEN: usize = 1024;
/// Longest broker address in a link, in bytes.
pub const MAX_BROKER_LEN: usize = 256;
/// The only link version this build reads and writes.
pub const LINK_VERSION: u32 = 1;

/// Characters left as they are in text fields: RFC 3986 "unreserved". Everything else is `%XX`.
const TEXT_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why a pairing link was refused. Every variant names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a `tandem://link?` link at all.
    #[error("not a Tandem pairing link (it must start with {LINK_PREFIX})")]
    Prefix,
    /// Longer than [`MAX_LINK_LEN`].
    #[error("the link is {len} bytes long, at most {MAX_LINK_LEN} allowed")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A version this build does not read.
    #[error("field v: link version {found} is not supported (this build reads version 1)")]
    Version {
        /// The version text found.
        found: String,
    },
    /// A parameter is missing.
    #[error("field {field} is missing")]
    Missing {
        /// The parameter.
        field: &'static str,
    },
    /// A parameter appears twice.
    #[error("field {field} appears more than once")]
    Duplicate {
        /// The parameter.
        field: String,
    },
    /// A parameter this version does not know.
    #[error("field {field} is not part of a version 1 link")]
    Unknown {
        /// The parameter.
        field: String,
    },
    /// A parameter's value is invalid.
    #[error("field {field}: {reason}")]
    Field {
        /// The parameter.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// A pairing reference: 16 random bytes naming one QR code's rendezvous topic.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PairingRef(pub [u8; 16]);

impl PairingRef {
    /// A fresh random reference.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The MQTT topic of this code's rendezvous: `tandem/v1/pair/{ref}`.
    #[must_use]
    pub fn topic(&self) -> String {
        format!("tandem/v1/pair/{self}")
    }
}

impl fmt::Display for PairingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE32_NOPAD.encode(&self.0).to_ascii_lowercase())
    }
}

impl fmt::Debug for PairingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairingRef({self})")
    }
}

/// The one-time link secret (32 bytes), erased on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkSecret(Zeroizing<[u8; 32]>);

impl LinkSecret {
    /// A fresh random secret.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut_slice());
        Self(bytes)
    }

    /// Wraps known bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSecret(<redacted>)")
    }
}

/// How the desktop that shows a code will work once linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkMode {
    /// A device of the account with its own broker session (DESIGN 5).
    MultiDevice,
    /// A desktop that talks to the phone over the WebSocket bridge (DESIGN 8); not a device of
    /// the account.
    Bridge,
}

impl LinkMode {
    /// `"multi-device"` or `"bridge"`, as the CLI's `--mode` and `status` spell it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MultiDevice => "multi-device",
            Self::Bridge => "bridge",
        }
    }
}

impl fmt::Display for LinkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LinkMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "multi-device" => Ok(Self::MultiDevice),
            "bridge" => Ok(Self::Bridge),
            other => Err(format!(
                "unknown link mode {:?} (multi-device or bridge)",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// The desktop's public keys a link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKeys {
    /// Multi-device: the new device's keys (`dh`, `sig`); the offer is sealed to `x25519`.
    Device(DevicePublicKeys),
    /// Bridge: a one-off X25519 key the pairing messages are sealed to (`dh`), and the
    /// desktop's bridge public key (`bridge`).
    Bridge {
        /// The one-off pairing key (HPKE), used for nothing after linking.
        dh: [u8; 32],
        /// The desktop's bridge static key (Noise), which the phone authorises.
        bridge: [u8; 32],
    },
}

impl LinkKeys {
    /// The X25519 key the pairing messages are sealed to (`dh`).
    #[must_use]
    pub fn dh(&self) -> &[u8; 32] {
        match self {
            Self::Device(keys) => &keys.x25519,
            Self::Bridge { dh, .. } => dh,
        }
    }

    /// The mode these keys link in.
    #[must_use]
    pub fn mode(&self) -> LinkMode {
        match self {
            Self::Device(_) => LinkMode::MultiDevice,
            Self::Bridge { .. } => LinkMode::Bridge,
        }
    }

    /// The new device's keys, in multi-device mode.
    #[must_use]
    pub fn device(&self) -> Option<&DevicePublicKeys> {
        match self {
            Self::Device(keys) => Some(keys),
            Self::Bridge { .. } => None,
        }
    }

    /// The desktop's bridge key, in bridge mode.
    #[must_use]
    pub fn bridge(&self) -> Option<&[u8; 32]> {
        match self {
            Self::Device(_) => None,
            Self::Bridge { bridge, .. } => Some(bridge),
        }
    }

    /// Checks that every key can be used: no X25519 key of small order, a valid Ed25519
    /// point, and in bridge mode two different keys (one key is never used in two protocols).
    ///
    /// # Errors
    /// `(field, reason)` naming the link field at fault.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        match self {
            Self::Device(keys) => keys.check(),
            Self::Bridge { dh, bridge } => {
                check_x25519("dh", dh)?;
                check_x25519("bridge", bridge)?;
                if dh == bridge {
                    return Err(("bridge", "must differ from dh"));
                }
                Ok(())
            }
        }
    }
}

/// Refuses an X25519 public key of small order (every exchange with it gives zero): a
/// clamped scalar maps exactly such points to the identity.
pub fn check_x25519(
    name: &'static str,
    key: &[u8; 32],
) -> Result<(), (&'static str, &'static str)> {
    let probe = XStaticSecret::from([0x55u8; 32]);
    if probe
        .diffie_hellman(&XPublicKey::from(*key))
        .was_contributory()
    {
        Ok(())
    } else {
        Err((name, "is not a usable X25519 public key (small order)"))
    }
}

/// A parsed, valid pairing link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingLink {
    /// The code's rendezvous reference.
    pub pairing_ref: PairingRef,
    /// The desktop's public keys (the offer is sealed to [`LinkKeys::dh`]); they say the mode.
    pub keys: LinkKeys,
    /// The link secret.
    pub secret: LinkSecret,
    /// When the code stops being valid (ms since the Unix epoch).
    pub expires_at_ms: i64,
    /// The broker both sides meet on (`mqtt://host:port`).
    pub broker: String,
    /// The desktop's device name.
    pub name: String,
    /// The desktop's platform.
    pub platform: String,
}

impl PairingLink {
    /// The mode the desktop links in.
    #[must_use]
    pub fn mode(&self) -> LinkMode {
        self.keys.mode()
    }

    /// Checks the fields a link carries (used by [`FromStr`] and before formatting).
    ///
    /// # Errors
    /// [`LinkError::Field`] naming the first bad field; [`LinkError::TooLong`] when the fields
    /// together make a link longer than [`MAX_LINK_LEN`].
    pub fn validate(&self) -> Result<(), LinkError> {
        check_text("name", &self.name, MAX_DEVICE_NAME_LEN)?;
        check_text("platform", &self.platform, MAX_PLATFORM_LEN)?;
        check_broker(&self.broker)?;
        if self.expires_at_ms < 0 {
            return Err(field("exp", "must not be negative"));
        }
        let len = self.to_string().len();
        if len > MAX_LINK_LEN {
            return Err(LinkError::TooLong { len });
        }
        Ok(())
    }
}

fn field(field: &'static str, reason: impl Into<String>) -> LinkError {
    LinkError::Field {
        field,
        reason: reason.into(),
    }
}

fn check_text(name: &'static str, text: &str, max: usize) -> Result<(), LinkError> {
    if text.is_empty() {
        return Err(field(name, "is empty"));
    }
    if text.len() > max {
        return Err(field(name, format!("is longer than {max} bytes")));
    }
    if text.chars().any(char::is_control) {
        return Err(field(name, "contains control characters"));
    }
    Ok(())
}

fn check_broker(broker: &str) -> Result<(), LinkError> {
    if broker.len() > MAX_BROKER_LEN {
        return Err(field(
            "broker",
            format!("is longer than {MAX_BROKER_LEN} bytes"),
        ));
    }
    let rest = broker
        .strip_prefix("mqtt://")
        .or_else(|| broker.strip_prefix("mqtts://"))
        .ok_or_else(|| field("broker", "must be an mqtt:// or mqtts:// address"))?;
    if rest.is_empty() || rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(field("broker", "has no valid host"));
    }
    Ok(())
}

impl fmt::Display for PairingLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.keys {
            LinkKeys::Device(keys) => write!(
                f,
                "{LINK_PREFIX}v={LINK_VERSION}&ref={}&dh={}&sig={}",
                self.pairing_ref,
                BASE64URL_NOPAD.encode(&keys.x25519),
                BASE64URL_NOPAD.encode(&keys.ed25519),
            )?,
            LinkKeys::Bridge { dh, bridge } => write!(
                f,
                "{LINK_PREFIX}v={LINK_VERSION}&mode=bridge&ref={}&dh={}&bridge={}",
                self.pairing_ref,
                BASE64URL_NOPAD.encode(dh),
                BASE64URL_NOPAD.encode(bridge),
            )?,
        }
        write!(
            f,
            "&secret={}&exp={}&broker={}&name={}&platform={}",
            Zeroizing::new(BASE64URL_NOPAD.encode(self.secret.expose())).as_str(),
            self.expires_at_ms,
            utf8_percent_encode(&self.broker, TEXT_ENCODE),
            utf8_percent_encode(&self.name, TEXT_ENCODE),
            utf8_percent_encode(&self.platform, TEXT_ENCODE),
        )
    }
}

/// Every parameter a link may hold, in the order of the slots the parser fills.
const FIELDS: [&str; 11] = [
    "v", "ref", "dh", "sig", "secret", "exp", "broker", "name", "platform", "mode", "bridge",
];
/// Where `mode` and `bridge` sit in [`FIELDS`].
const MODE: usize = 9;
const BRIDGE: usize = 10;
const SIG: usize = 3;

fn decode_32(name: &'static str, value: &str) -> Result<[u8; 32], LinkError> {
    let bytes = BASE64URL_NOPAD
        .decode(value.as_bytes())
        .map_err(|_| field(name, "is not base64url without padding"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| field(name, format!("holds {} bytes instead of 32", b.len())))
}

fn decode_text(name: &'static str, value: &str) -> Result<String, LinkError> {
    percent_decode_str(value)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| field(name, "is not percent-encoded UTF-8"))
}

impl FromStr for PairingLink {
    type Err = LinkError;

    fn from_str(text: &str) -> Result<Self, LinkError> {
        let text = text.trim();
        if text.len() > MAX_LINK_LEN {
            return Err(LinkError::TooLong { len: text.len() });
        }
        let query = text.strip_prefix(LINK_PREFIX).ok_or(LinkError::Prefix)?;
        let mut values: [Option<&str>; 11] = [None; 11];
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = FIELDS
                .iter()
                .position(|f| *f == key)
                .and_then(|i| values.get_mut(i))
                .ok_or_else(|| LinkError::Unknown {
                    field: key.chars().take(32).collect(),
                })?;
            if slot.replace(value).is_some() {
                return Err(LinkError::Duplicate {
                    field: key.to_owned(),
                });
            }
        }
        let get = |i: usize| -> Result<&str, LinkError> {
            let name = FIELDS.get(i).copied().unwrap_or("?");
            values
                .get(i)
                .copied()
                .flatten()
                .ok_or(LinkError::Missing { field: name })
        };
        let version = get(0)?;
        if version != "1" {
            return Err(LinkError::Version {
                found: version.chars().take(16).collect(),
            });
        }
        let pairing_ref = {
            let raw = get(1)?.to_ascii_uppercase();
            let bytes = BASE32_NOPAD
                .decode(raw.as_bytes())
                .map_err(|_| field("ref", "is not base32"))?;
            PairingRef(
                bytes
                    .try_into()
                    .map_err(|_| field("ref", "does not hold 16 bytes"))?,
            )
        };
        let present = |i: usize| values.get(i).copied().flatten();
        let keys = match present(MODE) {
            None => {
                if present(BRIDGE).is_some() {
                    return Err(field(
                        "bridge",
                        "only a bridge link (mode=bridge) carries it",
                    ));
                }
                LinkKeys::Device(DevicePublicKeys {
                    x25519: decode_32("dh", get(2)?)?,
                    ed25519: decode_32("sig", get(SIG)?)?,
                })
            }
            Some("bridge") => {
                if present(SIG).is_some() {
                    return Err(field("sig", "a bridge link carries no device signing key"));
                }
                LinkKeys::Bridge {
                    dh: decode_32("dh", get(2)?)?,
                    bridge: decode_32("bridge", get(BRIDGE)?)?,
                }
            }
            Some(_) => {
                return Err(field(
                    "mode",
                    "must be bridge (a multi-device link has no mode)",
                ));
            }
        };
        let secret = LinkSecret::from_bytes(decode_32("secret", get(4)?)?);
        let expires_at_ms = get(5)?
            .parse::<i64>()
            .map_err(|_| field("exp", "is not a whole number of milliseconds"))?;
        let link = PairingLink {
            pairing_ref,
            keys,
            secret,
            expires_at_ms,
            broker: decode_text("broker", get(6)?)?,
            name: decode_text("name", get(7)?)?,
            platform: decode_text("platform", get(8)?)?,
        };
        link.validate()?;
        link.keys
            .check()
            .map_err(|(name, reason)| field(name, reason))?;
        Ok(link)
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
