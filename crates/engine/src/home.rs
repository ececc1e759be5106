//! Where a device keeps its data when `--home` and `TANDEM_HOME` are not given.

use std::path::PathBuf;

use crate::{Error, Result};

/// Which role a program plays; the primary and companions get separate default homes so a
/// phone and a desktop on one machine never share a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `tandem-phone`: owns the account.
    Phone,
    /// `tandem` and the desktop app: linked companions.
    Desktop,
}

impl Role {
    fn dir_name(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Desktop => "desktop",
        }
    }
}

/// The platform data directory for `role`, e.g. `~/.local/share/tandem/desktop` on Linux.
pub fn default_home(role: Role) -> Result<PathBuf> {
    directories::ProjectDirs::from("app", "tandem", "tandem")
        .map(|dirs| dirs.data_dir().join(role.dir_name()))
        .ok_or(Error::NoHome)
}
