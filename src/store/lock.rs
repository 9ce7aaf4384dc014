//! The per-profile lock file that serialises writers, and the temp-file names atomic writes use.

use crate::error::{Error, Result};
use std::fs;
use std::path::Path;

/// Length of the random part of a temp file's name (tempfile's default).
pub(super) const TEMP_RANDOM_LEN: usize = 6;

/// Temp files of a profile's cache are `.<profile>.age.tmp-XXXXXX`.
pub(super) fn temp_prefix(profile: &str) -> String {
    format!(".{profile}.age.tmp-")
}

/// Opens (creating 0600) a sidecar lock file.
pub(super) fn open_lock_file(path: &Path) -> Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.create(true).truncate(false).read(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| Error::io(format!("cannot open lock {}", path.display()), e))
}

/// Opens and exclusively locks a sidecar lock file, blocking until free.
pub(super) fn lock_file(path: &Path) -> Result<fs::File> {
    let file = open_lock_file(path)?;
    file.lock().map_err(|e| Error::io(format!("cannot lock {}", path.display()), e))?;
    Ok(file)
}

/// Holds a profile's sidecar lock while alive; the cache it guards is named by it.
pub struct ProfileLock {
    pub(super) profile: String,
    pub(super) _file: fs::File,
}

impl ProfileLock {
    pub fn profile(&self) -> &str {
        &self.profile
    }
}
