//! The database connection of a host, shared by the serving threads of a resident host.
//!
//! Each serving thread once had a connection of its own. SQLite lets one connection write at a
//! time anyway, and a connection that sees another one's commit when it starts a transaction
//! throws its whole page cache away: with a worker thread beside the host, each event's
//! transaction read its pages again from the file (18,505 `pread`s against 6,027 for the same
//! 8,400 events served by one thread, measured), and a thread that found the other's write lock
//! held polled for it. One connection behind a mutex keeps its cache and hands the lock over
//! without polling; the threads still handle their events (plugins, merging) side by side.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::store::Store;

/// A database being opened on another thread.
pub struct StoreOpening(std::thread::JoinHandle<Result<Store, String>>);

impl StoreOpening {
    /// Starts opening the database at `path`, and compiling the statements an event runs;
    /// None if no thread could be started (the store is then opened when first needed).
    pub fn start(path: std::path::PathBuf) -> Option<StoreOpening> {
        Self::spawn(path, false)
    }

    /// [`StoreOpening::start`] for a database the client is making meanwhile (see
    /// [`crate::resident::Handover::client_makes_db`]): it is waited for, up to
    /// [`CLIENT_MAKES_DB_PATIENCE`], before this process makes one itself.
    pub fn start_after_client(path: std::path::PathBuf) -> Option<StoreOpening> {
        Self::spawn(path, true)
    }

    fn spawn(path: std::path::PathBuf, client_makes_it: bool) -> Option<StoreOpening> {
        let open = move || {
            if client_makes_it {
                // Only waits: warming SQLite up meanwhile (tried) competed with the plugin loads
                // and the client's fsync for the cores, and the store was ready later.
                //
                // SAFETY: getppid has no preconditions. The client is this process's parent
                // and made its first database under its first build name before starting it.
                let client = unsafe { libc::getppid() } as u32;
                crate::newdb::wait_for_maker(&path, &crate::newdb::build_name(&path, client, 0), CLIENT_MAKES_DB_PATIENCE);
            }
            let store = Store::open(&path).map_err(|e| e.to_string())?;
            store.prepare_hot_statements();
            Ok(store)
        };
        std::thread::Builder::new().name("chronicle-store".into()).spawn(open).ok().map(StoreOpening)
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    fn join(self) -> Result<Store, String> {
        self.0.join().unwrap_or_else(|_| Err("the store opener panicked".into()))
    }
}

/// How long a handed-over host waits for the database its client is making: its write and
/// fsync took 0.5-2.9 ms here. A client that failed (a full disk) removes its build file,
/// and the host stops waiting then; only a client stuck in its write costs this much.
pub const CLIENT_MAKES_DB_PATIENCE: Duration = Duration::from_millis(20);

/// The store as far as it got: not opened yet, being opened, open, or failed to open.
#[derive(Default)]
struct Slot {
    store: Option<Result<Store, String>>,
    opening: Option<StoreOpening>,
}

/// One connection for a host and its siblings ([`super::Host::sibling`]), opened on first use.
#[derive(Clone, Default)]
pub(super) struct SharedStore(Arc<Mutex<Slot>>);

/// The open store, held by one thread until dropped.
pub struct StoreGuard<'a>(MutexGuard<'a, Slot>);

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        match &self.0.store {
            Some(Ok(store)) => store,
            // `SharedStore::get` hands out guards of open stores only.
            _ => unreachable!("a StoreGuard of a store that is not open"),
        }
    }
}

impl std::ops::DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        match &mut self.0.store {
            Some(Ok(store)) => store,
            _ => unreachable!("a StoreGuard of a store that is not open"),
        }
    }
}

impl SharedStore {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        // A thread that panicked holding it left a connection SQLite keeps consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts opening the store on another thread, unless it is open or opening already.
    pub(super) fn open_in_background(&self, path: &std::path::Path) {
        let mut slot = self.slot();
        if slot.store.is_none() && slot.opening.is_none() {
            slot.opening = StoreOpening::start(path.to_owned());
        }
    }

    /// Takes over a store that `opening` started to open, unless one is open or opening.
    pub(super) fn adopt(&self, opening: Option<StoreOpening>) {
        let mut slot = self.slot();
        if slot.store.is_none() && slot.opening.is_none() {
            slot.opening = opening;
        }
    }

    /// Whether the store is still being opened on another thread.
    pub(super) fn still_opening(&self) -> bool {
        self.slot().opening.as_ref().is_some_and(|o| !o.is_finished())
    }

    /// The store, opened (or the opening finished) on first use. An error is kept until
    /// [`SharedStore::forget_failure`].
    pub(super) fn get(&self, path: &std::path::Path) -> Result<StoreGuard<'_>, String> {
        let mut slot = self.slot();
        if let Some(opening) = slot.opening.take() {
            slot.store = Some(opening.join());
        }
        let failed = slot.store.get_or_insert_with(|| Store::open(path).map_err(|e| e.to_string())).as_ref().err().cloned();
        match failed {
            None => Ok(StoreGuard(slot)),
            Some(e) => Err(e),
        }
    }

    /// The store if it is open, without opening it.
    pub(super) fn if_open(&self) -> Option<StoreGuard<'_>> {
        let slot = self.slot();
        matches!(slot.store, Some(Ok(_))).then(|| StoreGuard(slot))
    }

    /// A store that failed to open is tried again at its next use.
    pub(super) fn forget_failure(&self) {
        let mut slot = self.slot();
        if matches!(slot.store, Some(Err(_))) {
            slot.store = None;
        }
    }
}
