//! Linking this computer to a phone: the running link (one at most), the code it shows now
//! (for `save_qr`), and how its events reach the UI. Each pairing code becomes a `code` event
//! carrying the QR code as SVG; in demo mode (`--qr-png FILE`) it is also written to FILE as PNG
//! so a phone process can scan it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tandem_engine::Event;

use crate::error::Result;
use crate::events::{AppEvent, ShellEvent};
use crate::worker::Worker;

/// How this computer is to be linked (the link screen's choice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkMode {
    /// A device of the account with its own broker session: it stays connected with the
    /// phone off.
    #[default]
    MultiDevice,
    /// Through the phone (DESIGN 8): messages go over the phone's bridge, which must be on
    /// and reachable; the history is kept on this computer either way.
    Bridge,
}

/// Pixels per QR module in the PNG files written (demo mode and `save_qr`).
pub const PNG_SCALE: u32 = 8;

/// The running link, if any (numbered, so a link that ends late cannot end a newer one), and
/// the code it shows.
#[derive(Debug, Default)]
pub struct Linking {
    worker: tokio::sync::Mutex<Option<(u64, Worker)>>,
    generation: AtomicU64,
    current: Arc<Mutex<Option<String>>>,
}

impl Linking {
    /// Stops the running link, if any, and forgets its code.
    pub async fn cancel(&self) {
        let worker = self.worker.lock().await.take();
        if let Some((_, worker)) = worker {
            worker.stop().await;
        }
        self.forget_code();
    }

    /// Runs `start` (which starts the link's worker, given its number) after stopping the
    /// previous link: the previous link is fully gone before the new one begins.
    ///
    /// # Errors
    /// The errors of `start`.
    pub async fn restart(&self, start: impl FnOnce(u64) -> Result<Worker>) -> Result<()> {
        let mut slot = self.worker.lock().await;
        if let Some((_, previous)) = slot.take() {
            previous.stop().await;
        }
        self.forget_code();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *slot = Some((generation, start(generation)?));
        Ok(())
    }

    /// Link number `generation` ended by itself: forgets it and its code when it is still the
    /// current link. Returns whether it was (false: cancelled or replaced meanwhile).
    pub async fn finish(&self, generation: u64) -> bool {
        let mut slot = self.worker.lock().await;
        if !matches!(&*slot, Some((current, _)) if *current == generation) {
            return false;
        }
        if let Some((_, worker)) = slot.take() {
            worker.stop().await;
        }
        self.forget_code();
        true
    }

    /// Where the link task keeps the code it shows.
    #[must_use]
    pub fn current_code(&self) -> Arc<Mutex<Option<String>>> {
        Arc::clone(&self.current)
    }

    /// The link text of the code shown now.
    #[must_use]
    pub fn code(&self) -> Option<String> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn forget_code(&self) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Draws one pairing code for the UI: the `code` event with its SVG, stamped `issued_at`.
///
/// # Errors
/// [`Error::Qr`] when the link does not fit in a QR code.
pub fn code_event(link: &str, index: u32, expires_at: i64, issued_at: i64) -> Result<AppEvent> {
    let svg = tandem_qr::QrCode::new(link)?.to_svg();
    Ok(ShellEvent::Code {
        link: link.to_owned(),
        svg,
        index,
        expires_at,
        issued_at,
    }
    .into())
}

/// Writes the QR code of `link` as a PNG to `path` (atomically; readable by its owner only).
///
/// # Errors
/// [`Error::Qr`] when it cannot be drawn or written.
pub fn write_png(link: &str, path: &Path) -> Result<()> {
    let png = tandem_qr::QrCode::new(link)?.to_png(PNG_SCALE)?;
    tandem_qr::write_png_atomically(path, &png)?;
    Ok(())
}

/// What the link task does with one engine event: codes are drawn (and written to `qr_png` in
/// demo mode) and remembered in `current`; everything else goes on as it is.
#[derive(Debug, Clone)]
pub struct CodeDrawer {
    /// Demo mode: the PNG file every code is written to.
    pub qr_png: Option<PathBuf>,
    /// The code shown now.
    pub current: Arc<Mutex<Option<String>>>,
}

impl CodeDrawer {
    /// The `code` event for `event` if it is a code (`None` for other events, and, logged, for
    /// a code that cannot be drawn).
    pub fn draw(&self, event: &Event, now_ms: i64) -> Option<AppEvent> {
        let Event::Code {
            link,
            index,
            expires_at,
        } = event
        else {
            return None;
        };
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(link.clone());
        if let Some(path) = &self.qr_png
            && let Err(e) = write_png(link, path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the QR code's PNG");
        }
        match code_event(link, *index, *expires_at, now_ms) {
            Ok(event) => Some(event),
            Err(e) => {
                tracing::error!(error = %e, "cannot draw the pairing code");
                None
            }
        }
    }
}

/// The `kind` of `link_failed` for an engine error: `expired` when the codes ran out (or the
/// phone says the code had expired), so the UI offers "Reload QR code"; else the engine's kind.
#[must_use]
pub fn failure_kind(e: &tandem_engine::Error) -> String {
    use tandem_proto::pairing::{PairingError, RejectReason};
    match e {
        tandem_engine::Error::Pairing(
            PairingError::CodeExpired
            | PairingError::ScannedExpired { .. }
            | PairingError::Refused {
                reason: RejectReason::Expired,
                ..
            },
        ) => "expired".to_owned(),
        other => other.kind().to_owned(),
    }
}

/// The `link_failed` event for an engine error.
#[must_use]
pub fn failed_event(e: &tandem_engine::Error) -> AppEvent {
    ShellEvent::LinkFailed {
        kind: failure_kind(e),
        message: e.to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "tandem://link?v=1&b=mqtt%3A%2F%2F127.0.0.1%3A1883&t=0123456789abcdef&k=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn a_code_becomes_an_svg_the_phone_can_read_back() {
        let drawer = CodeDrawer {
            qr_png: None,
            current: Arc::default(),
        };
        let event = drawer
            .draw(
                &Event::Code {
                    link: LINK.into(),
                    index: 2,
                    expires_at: 1_700_000_020_000,
                },
                1_700_000_000_000,
            )
            .unwrap();
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "code");
        assert_eq!(json["link"], LINK);
        assert_eq!(json["index"], 2);
        assert_eq!(json["expires_at"], 1_700_000_020_000_i64);
        assert_eq!(json["issued_at"], 1_700_000_000_000_i64);
        let svg = json["svg"].as_str().unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(svg.contains("fill=\"#ffffff\""), "white background");
        assert_eq!(
            svg,
            tandem_qr::QrCode::new(LINK).unwrap().to_svg(),
            "the engine's QR drawing"
        );
        assert_eq!(drawer.current.lock().unwrap().as_deref(), Some(LINK));
        // Other events are not codes.
        assert!(
            drawer
                .draw(
                    &Event::Refused {
                        reason: "busy".into()
                    },
                    0
                )
                .is_none()
        );
    }

    #[test]
    fn in_demo_mode_every_code_is_written_as_a_png_a_phone_can_scan() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("qr.png");
        let drawer = CodeDrawer {
            qr_png: Some(png.clone()),
            current: Arc::default(),
        };
        for (index, link) in [LINK, &format!("{LINK}B")].into_iter().enumerate() {
            drawer.draw(
                &Event::Code {
                    link: link.to_owned(),
                    index: u32::try_from(index).unwrap(),
                    expires_at: 0,
                },
                0,
            );
            assert_eq!(tandem_qr::decode_image_file(&png).unwrap(), link);
        }
    }

    #[test]
    fn a_png_that_cannot_be_written_does_not_stop_the_code() {
        let drawer = CodeDrawer {
            qr_png: Some(PathBuf::from("/nonexistent-dir/qr.png")),
            current: Arc::default(),
        };
        let event = drawer.draw(
            &Event::Code {
                link: LINK.into(),
                index: 0,
                expires_at: 0,
            },
            0,
        );
        assert!(event.is_some());
    }

    #[test]
    fn expired_codes_are_told_apart_from_other_failures() {
        use tandem_proto::pairing::{PairingError, RejectReason};
        let expired = tandem_engine::Error::Pairing(PairingError::CodeExpired);
        let json = serde_json::to_value(failed_event(&expired)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "link_failed", "kind": "expired", "message": "QR code expired, try again"})
        );
        let refused_expired = tandem_engine::Error::Pairing(PairingError::Refused {
            by: "phone",
            reason: RejectReason::Expired,
        });
        assert_eq!(failure_kind(&refused_expired), "expired");
        let busy = tandem_engine::Error::Pairing(PairingError::Refused {
            by: "phone",
            reason: RejectReason::Busy,
        });
        assert_eq!(failure_kind(&busy), "pairing");
        let broker = tandem_engine::Error::Broker {
            url: "mqtt://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(failure_kind(&broker), "broker");
    }

    #[tokio::test]
    async fn a_new_link_stops_the_previous_one_first() {
        let linking = Linking::default();
        let held = Arc::new(());
        let first = Arc::clone(&held);
        linking
            .restart(|_| {
                Worker::spawn("test link 1", move || async move {
                    let _keep = first;
                    std::future::pending::<()>().await;
                })
            })
            .await
            .unwrap();
        *linking.current_code().lock().unwrap() = Some(LINK.into());
        linking
            .restart(|_| {
                // The first link's worker is gone before the second starts.
                assert_eq!(Arc::strong_count(&held), 1);
                Worker::spawn("test link 2", std::future::pending::<()>)
            })
            .await
            .unwrap();
        assert_eq!(linking.code(), None);
        // The first link ending late does not end the second.
        assert!(!linking.finish(1).await);
        assert!(linking.finish(2).await);
        assert!(!linking.finish(2).await);
    }
}
