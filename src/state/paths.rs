//! Where the state database lives, and creating it with private permissions.

use std::ffi::{OsStr, OsString};
use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::StateError;

/// The file name inside the state directory.
const DB_FILE: &str = "state.db";

/// The default state database path, from the environment:
/// `$STATE_DIRECTORY/state.db` under systemd (the first entry if several are
/// colon-separated), else `$XDG_STATE_HOME/scsync/state.db`, else
/// `$HOME/.local/state/scsync/state.db`.
pub fn default_path() -> Result<PathBuf, StateError> {
    default_path_from(|name| std::env::var_os(name))
}

/// [`default_path`] with the environment passed in, so the rules can be
/// tested without touching the process environment.
pub fn default_path_from(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, StateError> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(dirs) = set("STATE_DIRECTORY")
        && let Some(first) = first_entry(&dirs)
    {
        return Ok(PathBuf::from(first).join(DB_FILE));
    }
    // The XDG spec says a relative value is invalid and must be ignored.
    if let Some(xdg) = set("XDG_STATE_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Ok(xdg.join("scsync").join(DB_FILE));
    }
    if let Some(home) = set("HOME") {
        return Ok(PathBuf::from(home)
            .join(".local/state/scsync")
            .join(DB_FILE));
    }
    Err(StateError::NoDefaultPath)
}

/// The first non-empty entry of a colon-separated list, as systemd writes
/// `STATE_DIRECTORY` when a unit names several directories.
fn first_entry(list: &OsStr) -> Option<OsString> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    list.as_bytes()
        .split(|&b| b == b':')
        .find(|part| !part.is_empty())
        .map(|part| OsString::from_vec(part.to_vec()))
}

/// `<path><suffix>`, e.g. `state.db` → `state.db.lock`.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates `dir` and any missing ancestors with mode 0700; an existing
/// directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates the parent directory (0700, with any missing ancestors) if it does
/// not exist, and the file (0600) if it does not exist. Existing directories
/// and files keep the permissions their owner gave them.
pub(crate) fn create_private_file(path: &Path) -> Result<(), StateError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|source| StateError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StateError::CreateFile {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    fn path_with(vars: &[(&str, &str)]) -> Result<PathBuf, StateError> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        default_path_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn systemd_state_directory_wins_and_its_first_entry_is_used() {
        let all = [
            ("STATE_DIRECTORY", "/var/lib/scsync:/var/lib/other"),
            ("XDG_STATE_HOME", "/home/a/.state"),
            ("HOME", "/home/a"),
        ];
        assert_eq!(
            path_with(&all).unwrap(),
            PathBuf::from("/var/lib/scsync/state.db")
        );
        assert_eq!(
            path_with(&[("STATE_DIRECTORY", "/var/lib/scsync")]).unwrap(),
            PathBuf::from("/var/lib/scsync/state.db")
        );
    }

    #[test]
    fn xdg_state_home_comes_next_when_absolute() {
        let vars = [("XDG_STATE_HOME", "/home/a/.state"), ("HOME", "/home/a")];
        assert_eq!(
            path_with(&vars).unwrap(),
            PathBuf::from("/home/a/.state/scsync/state.db")
        );
        let relative = [("XDG_STATE_HOME", "state"), ("HOME", "/home/a")];
        assert_eq!(
            path_with(&relative).unwrap(),
            PathBuf::from("/home/a/.local/state/scsync/state.db")
        );
    }

    #[test]
    fn home_is_the_fallback_and_empty_values_count_as_unset() {
        let vars = [
            ("STATE_DIRECTORY", ""),
            ("XDG_STATE_HOME", ""),
            ("HOME", "/home/a"),
        ];
        assert_eq!(
            path_with(&vars).unwrap(),
            PathBuf::from("/home/a/.local/state/scsync/state.db")
        );
        let err = path_with(&[("HOME", "")]).unwrap_err();
        assert!(matches!(err, StateError::NoDefaultPath));
        assert!(err.to_string().contains("--state"), "{err}");
    }

    #[test]
    fn new_directories_are_0700_and_the_new_file_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("a/b/state.db");
        create_private_file(&db).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        // Calling again on the existing file is fine and changes nothing.
        create_private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
    }

    #[test]
    fn suffix_is_appended_to_the_whole_name() {
        assert_eq!(
            with_suffix(Path::new("/x/state.db"), ".lock"),
            PathBuf::from("/x/state.db.lock")
        );
    }
}
