//! The manifest index: what each plugin file said about itself the last time it was loaded,
//! keyed by path and the file's identity (size, mtime, inode). With it the host `dlopen`s only
//! the plugins that subscribe to the current event; a changed file is simply loaded again.

use serde::{Deserialize, Serialize};

use super::{Candidate, PluginInfo};

/// One remembered plugin file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    /// The manifest, when the file loaded.
    pub info: Option<PluginInfo>,
    /// Why it did not load, when it did not.
    pub error: Option<String>,
}

impl IndexEntry {
    pub fn for_candidate(c: &Candidate, info: Option<PluginInfo>, error: Option<String>) -> IndexEntry {
        IndexEntry { path: c.path.to_string_lossy().into_owned(), size: c.size, mtime_ns: c.mtime_ns, inode: c.inode, info, error }
    }

    /// True when the entry describes the file as it is now.
    pub fn is_fresh_for(&self, c: &Candidate) -> bool {
        self.size == c.size && self.mtime_ns == c.mtime_ns && self.inode == c.inode && self.path == c.path.to_string_lossy()
    }
}
