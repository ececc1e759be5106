//! Errors as the UI receives them: a stable `kind` to branch on and a `message` to show.

use serde::Serialize;

/// An error serialized on purpose for the UI: `{"kind": "...", "message": "..."}`.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct UiError {
    /// A stable machine-readable kind (`not_found`, `bad_input`, `store`, ...).
    pub kind: &'static str,
    /// One plain sentence for people.
    pub message: String,
}

impl From<tandem_engine::Error> for UiError {
    fn from(e: tandem_engine::Error) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}
