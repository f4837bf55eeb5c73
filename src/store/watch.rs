//! File change notification for the SQLite store: a runner sleeping between
//! fire times wakes when another process writes the database, instead of
//! polling `PRAGMA data_version` many times a second.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// A watch on the directory of one database file. It reports changes to the
/// file and its companions (`-wal`, `-journal`, `-shm`); reads are ignored.
pub(crate) struct FileWatch {
    _watcher: ChangeHook,
    changes: Receiver<()>,
}

/// Calls a function, on the notification thread, each time the database
/// file or one of its companions (`-wal`, `-journal`, `-shm`) changes (reads
/// are ignored), for as long as it lives.
pub(crate) struct ChangeHook {
    _watcher: RecommendedWatcher,
}

impl ChangeHook {
    /// Watches the directory holding `db`; `None` when the platform or the
    /// file system offers no notification.
    pub(crate) fn new(db: &Path, on_change: impl Fn() + Send + 'static) -> Option<Self> {
        let db = std::fs::canonicalize(db).ok()?;
        let dir: PathBuf = db.parent()?.to_path_buf();
        let name = db.file_name()?.to_os_string();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let concerns_db = match &event {
                    // An error may hide a change: wake and look.
                    Err(_) => true,
                    Ok(e) => {
                        !matches!(e.kind, EventKind::Access(_))
                            && e.paths.iter().any(|p| {
                                p.file_name().is_some_and(|f| {
                                    f.as_encoded_bytes().starts_with(name.as_encoded_bytes())
                                })
                            })
                    }
                };
                if concerns_db {
                    on_change();
                }
            })
            .ok()?;
        watcher.watch(&dir, RecursiveMode::NonRecursive).ok()?;
        Some(ChangeHook { _watcher: watcher })
    }
}

impl FileWatch {
    /// Watches the directory holding `db`; `None` when the platform or the
    /// file system offers no notification (the caller then polls).
    pub(crate) fn new(db: &Path) -> Option<Self> {
        // One pending wake is enough: the sleeper re-reads the data version
        // after every wake, whatever woke it.
        let (wake, changes) = sync_channel(1);
        let watcher = ChangeHook::new(db, move || {
            let _ = wake.try_send(());
        })?;
        Some(FileWatch {
            _watcher: watcher,
            changes,
        })
    }

    /// Blocks until the database may have changed or `timeout` passes. A
    /// change noticed before the call returns at once; each change wakes
    /// one call.
    /// True when a change ended the wait.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        match self.changes.recv_timeout(timeout) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) => false,
            // The watcher thread is gone: sleep the whole time, as a poll.
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                false
            }
        }
    }
}
