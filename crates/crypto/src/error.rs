//! The one error type of `tandem-crypto`.
//!
//! Every variant says what was being checked and why it failed, so that the engine can log a
//! precise reason and the UI can show a clear message. Variants are distinct where callers act
//! differently on them (an older device list is ignored quietly, a forged one is reported).

use crate::{AccountId, DeviceId};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `tandem-crypto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system's random number generator could not be read.
    #[error("the operating system's random number generator failed: {reason}")]
    OsRandom {
        /// What `getrandom` reported.
        reason: String,
    },

    /// Text that should be an account id is not one.
    #[error("invalid account id {input:?}: {reason}")]
    InvalidAccountId {
        /// The text given (truncated to 64 characters).
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Text that should be a device id is not one.
    #[error("invalid device id {input:?}: {reason}")]
    InvalidDeviceId {
        /// The text given (truncated to 64 characters).
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Bytes that should be a public or secret key are not a usable key.
    #[error("invalid {what}: {reason}")]
    InvalidKey {
        /// Which key (for example "account public key").
        what: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A field of a device certificate is out of bounds (name too long, control characters...).
    #[error("device certificate of {device}: field {field} is invalid: {reason}")]
    CertificateField {
        /// The device the certificate describes.
        device: DeviceId,
        /// The field's name.
        field: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The certificate's account id is not the one derived from its account public key.
    #[error("device certificate of {device}: the account id does not match the account key")]
    CertificateAccountMismatch {
        /// The device the certificate claims to describe.
        device: DeviceId,
    },

    /// The account key's signature over a device certificate does not verify.
    #[error("device certificate of {device}: the account signature is invalid")]
    CertificateAccountSignature {
        /// The device the certificate claims to describe.
        device: DeviceId,
    },

    /// The device key's counter-signature over a device certificate does not verify.
    #[error("device certificate of {device}: the device counter-signature is invalid")]
    CertificateDeviceSignature {
        /// The device the certificate claims to describe.
        device: DeviceId,
    },

    /// A device tried to counter-sign a certificate that names other device keys.
    #[error("device certificate of {device}: it names other device keys than the signing device's")]
    CertificateKeysMismatch {
        /// The device the certificate describes.
        device: DeviceId,
    },

    /// A device list's signature does not verify under its account key.
    #[error("device list of account {account} (version {version}): the signature is invalid")]
    DeviceListSignature {
        /// The account the list claims to belong to.
        account: AccountId,
        /// The version the list claims.
        version: u64,
    },

    /// A device list belongs to another account than expected.
    #[error("device list for account {found} received where account {expected} was expected")]
    DeviceListWrongAccount {
        /// The account whose list was expected.
        expected: AccountId,
        /// The account the list belongs to.
        found: AccountId,
    },

    /// A device list is older than the one already accepted.
    #[error(
        "device list of account {account}: version {candidate} is older than the current {current}"
    )]
    DeviceListOlder {
        /// The account.
        account: AccountId,
        /// The version already accepted.
        current: u64,
        /// The version received.
        candidate: u64,
    },

    /// The same device list was received again (same version, same content): harmless.
    #[error("device list of account {account}: version {version} is already current")]
    DeviceListReplayed {
        /// The account.
        account: AccountId,
        /// The version.
        version: u64,
    },

    /// A different device list with the current version number was received: the account key
    /// signed two lists with one version (a bug on the primary, or a stolen account key).
    #[error("device list of account {account}: a different list with the same version {version}")]
    DeviceListConflict {
        /// The account.
        account: AccountId,
        /// The version both lists carry.
        version: u64,
    },

    /// A device list holds a certificate that this account's key did not issue.
    #[error(
        "device list of account {account}: the certificate of {device} belongs to another account"
    )]
    DeviceListForeignCertificate {
        /// The account of the list.
        account: AccountId,
        /// The device the foreign certificate names.
        device: DeviceId,
    },

    /// A device list is structurally invalid (empty, too many devices, duplicate index...).
    #[error("device list of account {account}: {reason}")]
    DeviceListInvalid {
        /// The account of the list.
        account: AccountId,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A key was asked to sign a list of another account.
    #[error("the account key of {key} cannot sign the device list of {list}")]
    DeviceListSignerMismatch {
        /// The signing key's account.
        key: AccountId,
        /// The list's account.
        list: AccountId,
    },

    /// A contact link could not be parsed.
    #[error("invalid contact link: {0}")]
    ContactLink(#[from] ContactLinkError),

    /// Bytes could not be decoded into the named structure.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's reason.
        reason: String,
    },

    /// Bytes of the named structure carry a format version this code does not know.
    #[error(
        "cannot decode {what}: format version {found} is not supported (this build reads {supported})"
    )]
    UnsupportedFormat {
        /// What was being decoded.
        what: &'static str,
        /// The version byte found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },

    /// Bytes of the named structure are longer or shorter than allowed.
    #[error("cannot decode {what}: {len} bytes is outside the allowed size (max {max})")]
    Size {
        /// What was being decoded.
        what: &'static str,
        /// The length given.
        len: usize,
        /// The maximum allowed.
        max: usize,
    },

    /// A structure could not be encoded (only happens on a bug or an absurd size).
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's reason.
        reason: String,
    },

    /// An X25519 exchange gave the all-zero result: the peer's key has small order.
    #[error("the X25519 key of {what} is not contributory (small-order point)")]
    NonContributory {
        /// Whose key (for example the device id).
        what: String,
    },

    /// HPKE refused to set up or open.
    #[error("HPKE {step} failed: {reason}")]
    Hpke {
        /// Which step (setup, export, seal, open).
        step: &'static str,
        /// The HPKE error.
        reason: String,
    },

    /// A key derivation failed (only happens on a bug: all lengths are fixed).
    #[error("key derivation failed: {what}")]
    KeyDerivation {
        /// Which derivation.
        what: &'static str,
    },

    /// Sealing failed (message too long for the AEAD).
    #[error("sealing failed: {reason}")]
    Seal {
        /// Why.
        reason: &'static str,
    },

    /// The ciphertext or its associated data was altered, or was sealed under another key.
    #[error("the message does not authenticate (bad tag)")]
    BadTag,

    /// A message counter was already consumed in this session (or its key was dropped from the
    /// bounded window of skipped keys).
    #[error("message counter {counter} of session {session} was already used")]
    Replay {
        /// The session id (hex).
        session: String,
        /// The counter.
        counter: u32,
    },

    /// A message counter is further ahead than the skipped-key window allows.
    #[error("message counter {counter} is more than {max_skip} ahead of the expected {next}")]
    TooFarAhead {
        /// The counter received.
        counter: u32,
        /// The next counter expected.
        next: u32,
        /// The window.
        max_skip: u32,
    },

    /// The session has sealed as many messages as a counter can number.
    #[error("session {session} is exhausted; start a new one")]
    SessionExhausted {
        /// The session id (hex).
        session: String,
    },

    /// A session header does not belong to the session it was given to.
    #[error("session header does not match session {session}: {reason}")]
    SessionMismatch {
        /// The session id (hex).
        session: String,
        /// What differs.
        reason: &'static str,
    },

    /// The remote device's key in the current device list is not the one the session was set up
    /// with (the device was re-linked or the list changed).
    #[error("device {device}: its X25519 key differs from the one the session was set up with")]
    KeyMismatch {
        /// The remote device.
        device: DeviceId,
    },

    /// Pairwise state was used with devices it does not belong to.
    #[error(
        "pairwise state is between {expected_local} and {expected_remote}, not {local} and {remote}"
    )]
    WrongPairwiseSession {
        /// The local device the state belongs to.
        expected_local: DeviceId,
        /// The remote device the state belongs to.
        expected_remote: DeviceId,
        /// The local device asked for.
        local: DeviceId,
        /// The remote device asked for.
        remote: DeviceId,
    },
}

/// Why a contact link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContactLinkError {
    /// The text does not start with `tandem://contact?`.
    #[error("it does not start with tandem://contact?")]
    NotAContactLink,
    /// The `v` parameter is not `1`.
    #[error("version {0:?} is not supported (this build reads v=1)")]
    UnsupportedVersion(String),
    /// A required parameter is absent.
    #[error("parameter {0} is missing")]
    MissingParameter(&'static str),
    /// A parameter appears twice.
    #[error("parameter {0} appears more than once")]
    DuplicateParameter(String),
    /// A parameter this version does not define.
    #[error("parameter {0:?} is not part of v=1")]
    UnknownParameter(String),
    /// A `key=value` pair is malformed (no `=`, empty key...).
    #[error("malformed query part {0:?}")]
    MalformedQuery(String),
    /// The account key is not 52 base32 characters of a valid Ed25519 key.
    #[error("account key: {0}")]
    BadAccountKey(&'static str),
    /// The name is badly encoded or out of bounds.
    #[error("name: {0}")]
    BadName(&'static str),
    /// The whole link is longer than allowed.
    #[error("the link is longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
}

/// Truncates user-supplied text for inclusion in an error message.
pub(crate) fn excerpt(input: &str) -> String {
    input.chars().take(64).collect()
}
