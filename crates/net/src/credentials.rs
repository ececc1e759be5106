//! Broker credentials: the username and password a device logs in with ([`Credentials`]),
//! the password kept as a secret ([`Password`]).
//!
//! This module owns how the password is held: zeroized when dropped, never printed, compared
//! in constant time. On a Tandem deployment the username is the device id and the password
//! is derived from the account's broker secret (`tandem_crypto::broker_auth`); see
//! `docs/broker/README.md`.
//!
//! One copy escapes this care: `rumqttc` keeps the password as a plain `String` inside its
//! `MqttOptions` (and the CONNECT packet it encodes) for as long as the connection lives.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A broker password. Zeroized on drop; its `Debug` prints nothing of it.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps `password`, taking ownership of its buffer (which is zeroized on drop).
    #[must_use]
    pub fn new(password: impl Into<String>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// The password, for handing to the MQTT client.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its length in bytes (MQTT limits it to 65535).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self::new(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Self::new(password)
    }
}

impl From<Zeroizing<String>> for Password {
    fn from(password: Zeroizing<String>) -> Self {
        Self(password)
    }
}

impl PartialEq for Password {
    /// Constant time in the contents (the lengths are compared first).
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Password {}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What a client logs in with: the MQTT username and password of the CONNECT packet.
///
/// On the device listener of a Tandem broker the username is the device's broker name
/// (`{account}-{index}`), which the broker also makes the client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username (not secret: brokers log it).
    pub username: String,
    /// The password.
    pub password: Password,
}

impl Credentials {
    /// Credentials from a username and a password.
    #[must_use]
    pub fn new(username: impl Into<String>, password: impl Into<Password>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let credentials = Credentials::new("alice.1", "hunter2-secret");
        let printed = format!("{credentials:?}");
        assert!(printed.contains("alice.1"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn passwords_compare_by_content_and_length() {
        assert_eq!(Password::from("abc"), Password::new(String::from("abc")));
        assert_ne!(Password::from("abc"), Password::from("abd"));
        assert_ne!(Password::from("abc"), Password::from("abcd"));
        assert_ne!(Password::from(""), Password::from("a"));
        let password = Password::from(Zeroizing::new(String::from("xyz")));
        assert_eq!(password.expose(), "xyz");
        assert_eq!(password.len(), 3);
        assert!(!password.is_empty());
        assert!(Password::from("").is_empty());
    }
}
