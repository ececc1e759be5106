//! One-shot sealing to a device's static X25519 key with HPKE Auth mode (RFC 9180
//! single-shot API), for messages that do not belong to a session (a pairing offer and its
//! answer), and as the per-message baseline the benchmarks compare sessions against.
//!
//! Output layout: `enc` (32 bytes) || ChaCha20-Poly1305 ciphertext with its 16-byte tag.

use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::rng::CryptoRng;
use crate::session::{ENC_LEN, HpkeAead, Kdf, Kem, setup_error};
use crate::{DeviceKeys, Error, Result};

/// Longest `info` accepted (HPKE itself allows a little under 64 KiB).
pub const MAX_INFO_LEN: usize = 1024;

fn hpke_error(step: &'static str) -> impl Fn(hpke::HpkeError) -> Error {
    move |e| Error::Hpke {
        step,
        reason: e.to_string(),
    }
}

/// Seals `plaintext` to `recipient_x25519`, authenticated as `sender` (HPKE Auth mode,
/// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305). `info` names the purpose and
/// both parties; `aad` is authenticated but not encrypted.
pub fn seal(
    sender: &DeviceKeys,
    recipient_x25519: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>> {
    if info.len() > MAX_INFO_LEN {
        return Err(Error::Seal {
            reason: "info is longer than 1024 bytes",
        });
    }
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(sender.x25519_secret().as_bytes())
        .map_err(hpke_error("key import"))?;
    let pk = Kem::sk_to_pk(&sk);
    let pk_recipient = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient_x25519)
        .map_err(hpke_error("key import"))?;
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<HpkeAead, Kdf, Kem>(
        &OpModeS::Auth((sk, pk)),
        &pk_recipient,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(setup_error(|| "the one-shot recipient".into()))?;
    let mut out = Vec::with_capacity(ENC_LEN + ciphertext.len());
    out.extend_from_slice(enc.to_bytes().as_slice());
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens what [`seal`] produced, checking it was sealed by the holder of `sender_x25519`.
pub fn open(
    recipient: &DeviceKeys,
    sender_x25519: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if info.len() > MAX_INFO_LEN {
        return Err(Error::Seal {
            reason: "info is longer than 1024 bytes",
        });
    }
    let (enc, ciphertext) = sealed.split_at_checked(ENC_LEN).ok_or(Error::BadTag)?;
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(recipient.x25519_secret().as_bytes())
        .map_err(hpke_error("key import"))?;
    let pk_sender = <Kem as hpke::Kem>::PublicKey::from_bytes(sender_x25519)
        .map_err(hpke_error("key import"))?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(hpke_error("enc import"))?;
    hpke::single_shot_open::<HpkeAead, Kdf, Kem>(
        &OpModeR::Auth(pk_sender),
        &sk,
        &enc,
        info,
        ciphertext,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|e| match e {
        hpke::HpkeError::OpenError => Error::BadTag,
        hpke::HpkeError::DecapError => Error::NonContributory {
            what: "the one-shot sender or enc".into(),
        },
        other => hpke_error("open")(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{ChaCha20Rng, SeedableRng};

    #[test]
    fn the_recipient_opens_and_nobody_else_does() {
        let mut rng = ChaCha20Rng::from_seed([11; 32]);
        let phone = DeviceKeys::generate(&mut rng);
        let desktop = DeviceKeys::generate(&mut rng);
        let mallory = DeviceKeys::generate(&mut rng);
        let to = desktop.public_keys().x25519;
        let from = phone.public_keys().x25519;
        let sealed = seal(
            &phone,
            &to,
            b"tandem/v1 pairing offer",
            b"ref",
            b"offer",
            &mut rng,
        )
        .unwrap();
        assert_eq!(
            open(&desktop, &from, b"tandem/v1 pairing offer", b"ref", &sealed)
                .unwrap()
                .as_slice(),
            b"offer"
        );
        // Wrong recipient, wrong claimed sender, wrong info, wrong aad, flipped byte: all refused.
        assert!(open(&mallory, &from, b"tandem/v1 pairing offer", b"ref", &sealed).is_err());
        let not_phone = mallory.public_keys().x25519;
        assert!(
            open(
                &desktop,
                &not_phone,
                b"tandem/v1 pairing offer",
                b"ref",
                &sealed
            )
            .is_err()
        );
        assert!(open(&desktop, &from, b"tandem/v1 other", b"ref", &sealed).is_err());
        assert!(open(&desktop, &from, b"tandem/v1 pairing offer", b"reg", &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 0x80;
        assert_eq!(
            open(
                &desktop,
                &from,
                b"tandem/v1 pairing offer",
                b"ref",
                &flipped
            ),
            Err(Error::BadTag)
        );
        assert_eq!(
            open(&desktop, &from, b"i", b"", &sealed[..31]),
            Err(Error::BadTag)
        );
    }

    #[test]
    fn small_order_keys_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([12; 32]);
        let phone = DeviceKeys::generate(&mut rng);
        assert!(matches!(
            seal(&phone, &[0u8; 32], b"i", b"", b"x", &mut rng),
            Err(Error::NonContributory { .. })
        ));
    }
}
