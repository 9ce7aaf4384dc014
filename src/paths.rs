//! Where age-oauth keeps per-user state, and the one way files are written.
//! `AGE_OAUTH_HOME` puts everything under one directory; otherwise the platform's dirs are used.

use crate::env::Env;
use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The per-user locations (config file, encrypted caches, locks, identity) and the environment
/// snapshot they were resolved from: everything below the CLI reads variables from here.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The user configuration file.
    pub config_file: PathBuf,
    /// The per-user data directory (caches, identity).
    pub data_dir: PathBuf,
    env: Arc<Env>,
}

impl Paths {
    /// Resolves from `AGE_OAUTH_HOME` when set, else from the platform's directories.
    /// The paths keep `env` for everything that reads a variable later.
    pub fn from_env(env: &Env) -> Result<Paths> {
        if let Some(home) = env.get(&crate::env::HOME_DIR) {
            return Ok(Paths::under(PathBuf::from(home)).with_env(env.clone()));
        }
        // Windows: everything in %APPDATA%\age-oauth (ProjectDirs would split it into \config and \data).
        #[cfg(windows)]
        if let Some(appdata) = env.get(&crate::env::APPDATA) {
            return Ok(Paths::under(PathBuf::from(appdata).join("age-oauth")).with_env(env.clone()));
        }
        let dirs = directories::ProjectDirs::from("", "", "age-oauth")
            .ok_or_else(|| Error::Config("cannot find a home directory: set AGE_OAUTH_HOME=DIR".into()))?;
        Ok(Paths {
            config_file: dirs.config_dir().join("config.toml"),
            data_dir: dirs.data_dir().to_path_buf(),
            env: Arc::new(env.clone()),
        })
    }

    /// Everything under one directory, with an empty environment (so no variable of the calling
    /// process changes what the library does: tests, the demo). Add one with [`Paths::with_env`].
    pub fn under(home: PathBuf) -> Paths {
        Paths { config_file: home.join("config.toml"), data_dir: home, env: Arc::new(Env::default()) }
    }

    /// The same paths read with this environment snapshot.
    #[must_use]
    pub fn with_env(mut self, env: Env) -> Paths {
        self.env = Arc::new(env);
        self
    }

    /// The environment snapshot handed down from the CLI (empty under [`Paths::under`]).
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The directory of the encrypted caches.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }

    /// The encrypted cache file of a profile.
    pub fn cache_file(&self, profile: &str) -> PathBuf {
        self.cache_dir().join(format!("{profile}.age"))
    }

    /// The lock file that serialises a profile's refreshes.
    pub fn lock_file(&self, profile: &str) -> PathBuf {
        self.cache_dir().join(format!("{profile}.lock"))
    }

    /// The age identity file that decrypts the caches.
    pub fn identity_file(&self) -> PathBuf {
        self.data_dir.join("identity.txt")
    }
}

/// Creates `dir` (and parents) and makes `dir` itself 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = fs::metadata(path).map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?;
    if current.permissions().mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("cannot set permissions on {}", path.display()), e))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` atomically: a 0600 temp file in the same directory,
/// fsync, rename over the target, fsync the directory. A crash at any point leaves
/// either the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with_prefix(path, bytes, ".tmp-")
}

/// `write_atomic` with a chosen temp-file prefix (caches name theirs after the profile, so
/// the next writer of that profile can remove what a killed one left).
pub fn write_atomic_with_prefix(path: &Path, bytes: &[u8], prefix: &str) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::Other(format!("{} has no parent", path.display())))?;
    ensure_private_dir(dir)?;
    let ctx = |what: &str| format!("cannot {what} {}", path.display());
    // tempfile creates the file 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(prefix)
        .rand_bytes(6)
        .tempfile_in(dir)
        .map_err(|e| Error::io(ctx("create a temporary file for"), e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(ctx("write"), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(ctx("sync"), e))?;
    tmp.persist(path).map_err(|e| Error::io(ctx("replace"), e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Makes the rename durable; failure only weakens durability, so it is not an error.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes a private (0600) file atomically in a directory that is not ours (an export
/// in the user's working directory): unlike `write_atomic`, the directory is left as it is.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let ctx = |what: &str| format!("cannot {what} {}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(ctx("create a temporary file for"), e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(ctx("write"), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(ctx("sync"), e))?;
    tmp.persist(path).map_err(|e| Error::io(ctx("replace"), e.error))?;
    Ok(())
}

/// Writes a file that must not already exist (0600), atomically; returns false when
/// another process created it first. Used for the identity file, so two first runs
/// racing each other agree on one key.
pub fn create_new_atomic(path: &Path, bytes: &[u8]) -> Result<bool> {
    let dir = path.parent().ok_or_else(|| Error::Other(format!("{} has no parent", path.display())))?;
    ensure_private_dir(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot create a file in {}", dir.display()), e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(format!("cannot sync {}", path.display()), e))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            sync_dir(dir);
            Ok(true)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(format!("cannot create {}", path.display()), e.error)),
    }
}
