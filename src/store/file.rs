//! Noticing that the SQLite file was deleted or replaced underneath the running server.
//!
//! Every authenticated request and `/health` asks ([`DbFile::check`]), so the answer must be exact
//! and cheap. Exact: the file's (device, inode) at start-up against what the path names now.
//! Cheap: on Linux, inotify watches on the file's directory and on each directory above it queue an
//! event *inside* any rename, unlink or create that could change what the path names, before that
//! call returns. A check first empties that queue (one `read`, which usually finds nothing); only
//! when something happened to one of those names since the last `stat` that found the file
//! unchanged does it `stat` again (a path walk). Watches follow directories, not paths: once a
//! directory on the way has moved or gone, they cannot speak for the path, and from then on every
//! check is a `stat`, as it is without inotify (another OS, its limits reached, a path through a
//! symbolic link). Not seen by the watches: a file system mounted over one of those directories
//! after start-up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The database file as opened at start-up, to notice when it is deleted or replaced underneath
/// the running server: open connections would otherwise keep reading and writing the unlinked
/// file, and acknowledged writes would vanish at the next start.
#[derive(Debug, Clone)]
pub struct DbFile {
    path: PathBuf,
    /// (device, inode) at start-up; `None` for in-memory databases or non-Unix systems.
    identity: Option<(u64, u64)>,
    /// Says when a `stat` is needed at all (`None`: always).
    watch: Option<Arc<watch::Watch>>,
}

impl DbFile {
    pub fn new(path: PathBuf) -> Self {
        // The watch first: a replacement between the two is then an event, not a blind spot.
        let watch = watch::Watch::new(&path).map(Arc::new);
        let identity = identity(&path);
        Self {
            path,
            identity,
            watch: watch.filter(|_| identity.is_some()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ok while the file at the path is still the one that was opened.
    pub fn check(&self) -> Result<(), sqlx::Error> {
        let Some(expected) = self.identity else {
            return Ok(());
        };
        // How many events concerned the path so far (`None`: the watch cannot tell).
        let seen = self.watch.as_ref().and_then(|w| w.events());
        if let (Some(watch), Some(seen)) = (&self.watch, seen)
            && watch.confirmed() == seen
        {
            return Ok(()); // nothing happened to the path since a stat found the file unchanged
        }
        if identity(&self.path) == Some(expected) {
            if let (Some(watch), Some(seen)) = (&self.watch, seen) {
                watch.confirm(seen);
            }
            return Ok(());
        }
        let why = if self.path.exists() {
            "was replaced by another file: restart the service to open it"
        } else {
            "is missing: restore it (the service recovers when the same file is back)"
        };
        // An I/O error: `classify` calls it unavailable (503, and recovery when the file is back).
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the database file {} {why}", self.path.display()),
        )))
    }
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(target_os = "linux")]
mod watch {
    use std::ffi::OsString;
    use std::io::ErrorKind;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};

    use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
    use parking_lot::Mutex;

    #[derive(Debug)]
    pub struct Watch {
        state: Mutex<State>,
        /// The event count at the last `stat` that found the file unchanged.
        confirmed: AtomicU64,
    }

    #[derive(Debug)]
    struct State {
        inotify: Inotify,
        /// Each watched directory and the one name in it that leads to the file (the file's own
        /// name first).
        names: Vec<(WatchDescriptor, OsString)>,
        /// Events that concerned one of those names (or a watched directory itself).
        events: u64,
        /// The queue overflowed, a watch is gone, or a directory on the way moved: from now on,
        /// always `stat`.
        blind: bool,
    }

    impl Watch {
        /// Watches for the path's directory and every directory above it; `None` if any cannot
        /// be set up, or if the path is not already canonical (a symbolic link on the way could
        /// change without an event here).
        pub fn new(path: &Path) -> Option<Self> {
            let absolute = std::path::absolute(path).ok()?;
            if std::fs::canonicalize(&absolute).ok()? != absolute {
                return None;
            }
            let inotify = Inotify::init().ok()?;
            let mask = WatchMask::CREATE
                | WatchMask::DELETE
                | WatchMask::MOVED_FROM
                | WatchMask::MOVED_TO
                | WatchMask::DELETE_SELF
                | WatchMask::MOVE_SELF
                | WatchMask::ONLYDIR;
            let mut names = Vec::new();
            let mut below = absolute.as_path();
            while let (Some(dir), Some(name)) = (below.parent(), below.file_name()) {
                let wd = inotify.watches().add(dir, mask).ok()?;
                names.push((wd, name.to_owned()));
                below = dir;
            }
            Some(Self {
                state: Mutex::new(State {
                    inotify,
                    names,
                    events: 0,
                    blind: false,
                }),
                confirmed: AtomicU64::new(0),
            })
        }

        /// Empties the queue and returns how many events concerned the path so far; `None` when
        /// the watch cannot tell any more. Under a lock: a check that finds the queue empty
        /// because another one is reading it waits for that one's count.
        pub fn events(&self) -> Option<u64> {
            let mut state = self.state.lock();
            let State {
                inotify,
                names,
                events,
                blind,
            } = &mut *state;
            let mut buffer = [0u8; 1024];
            while !*blind {
                match inotify.read_events(&mut buffer) {
                    Ok(read) => {
                        for event in read {
                            let named = |(wd, name): &(WatchDescriptor, OsString)| {
                                *wd == event.wd && event.name == Some(name.as_os_str())
                            };
                            if names.first().is_some_and(named) {
                                *events += 1; // the file's own name: a stat will tell
                            } else if names.iter().skip(1).any(named)
                                || event.mask.intersects(
                                    EventMask::Q_OVERFLOW
                                        | EventMask::IGNORED
                                        | EventMask::DELETE_SELF
                                        | EventMask::MOVE_SELF,
                                )
                            {
                                // A directory on the way moved, went or was replaced: the
                                // watches now follow directories that may no longer lead to
                                // the file, and cannot say anything about the path any more.
                                *blind = true;
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => *blind = true,
                }
            }
            (!*blind).then_some(*events)
        }

        pub fn confirmed(&self) -> u64 {
            self.confirmed.load(Ordering::Acquire)
        }

        /// A `stat` that began after `events` were counted found the file unchanged.
        pub fn confirm(&self, events: u64) {
            self.confirmed.fetch_max(events, Ordering::AcqRel);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod watch {
    /// No watch: every check is a `stat`.
    #[derive(Debug)]
    pub enum Watch {}

    impl Watch {
        pub fn new(_: &std::path::Path) -> Option<Self> {
            None
        }
        pub fn events(&self) -> Option<u64> {
            match *self {}
        }
        pub fn confirmed(&self) -> u64 {
            match *self {}
        }
        pub fn confirm(&self, _: u64) {
            match *self {}
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn file_in(dir: &Path) -> DbFile {
        std::fs::create_dir_all(dir).expect("dir");
        let path = dir.join("test.db");
        std::fs::write(&path, b"one").expect("file");
        let file = DbFile::new(std::fs::canonicalize(path).expect("canonical"));
        assert!(file.watch.is_some(), "watched");
        file
    }

    #[test]
    fn a_file_moved_away_deleted_or_replaced_is_noticed_and_its_return_too() {
        let dir = tempfile::tempdir().expect("dir");
        let file = file_in(dir.path());
        let aside = dir.path().join("aside.db");
        for _ in 0..3 {
            assert!(file.check().is_ok(), "unchanged (and then without a stat)");
        }
        std::fs::rename(file.path(), &aside).expect("move away");
        assert!(file.check().is_err(), "moved away");
        assert!(file.check().is_err(), "still away");
        std::fs::rename(&aside, file.path()).expect("back");
        assert!(file.check().is_ok(), "back");

        let other = dir.path().join("other.db");
        std::fs::write(&other, b"two").expect("other");
        std::fs::rename(&other, file.path()).expect("replace");
        assert!(file.check().is_err(), "replaced by a rename over it");
        std::fs::remove_file(file.path()).expect("delete");
        assert!(file.check().is_err(), "deleted");
    }

    /// The path can change without its own directory seeing anything: a directory above it is
    /// moved aside and another put in its place.
    #[test]
    fn a_directory_above_the_file_swapped_for_another_is_noticed() {
        let dir = tempfile::tempdir().expect("dir");
        let file = file_in(&dir.path().join("data/current"));
        assert!(file.check().is_ok());
        std::fs::rename(dir.path().join("data"), dir.path().join("data.old")).expect("aside");
        file_in(&dir.path().join("data/current")); // a new file at the same path
        assert!(file.check().is_err(), "another file at the path");
    }

    /// The watches follow directories, not paths: once the file's directory was moved aside and
    /// another put in its place, they say nothing about the path, so every check is a `stat`
    /// (found by an attack: the file moved into the new directory, then replaced, was missed).
    #[test]
    fn after_its_directory_was_swapped_a_replaced_file_is_still_noticed() {
        let dir = tempfile::tempdir().expect("dir");
        let current = dir.path().join("data/current");
        let file = file_in(&current);
        let old = dir.path().join("data/current.old");
        std::fs::rename(&current, &old).expect("aside");
        std::fs::create_dir(&current).expect("new dir");
        assert!(file.check().is_err(), "no file in the new directory");
        std::fs::rename(old.join("test.db"), file.path()).expect("the file moved in");
        assert!(file.check().is_ok(), "the same file, at the path again");
        let other = current.join("other.db");
        std::fs::write(&other, b"two").expect("other");
        std::fs::rename(&other, file.path()).expect("replace");
        assert!(file.check().is_err(), "replaced in the new directory");
    }

    #[test]
    fn a_path_through_a_symbolic_link_is_checked_with_a_stat_every_time() {
        let dir = tempfile::tempdir().expect("dir");
        let real = file_in(&dir.path().join("real"));
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).expect("link");
        let linked = DbFile::new(dir.path().join("link/test.db"));
        assert!(linked.watch.is_none());
        assert!(linked.check().is_ok());
        std::fs::remove_file(real.path()).expect("delete");
        assert!(linked.check().is_err());
    }
}
