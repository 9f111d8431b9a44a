//! Named baselines on disk (the one module of this crate that does I/O): `NAME` resolves to
//! `<dir>/NAME.json`; anything containing a `/` or ending in `.json`/`.csv` is a file path.

use std::path::{Path, PathBuf};

use crate::SampleSet;

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("no baseline {name:?} (looked for {path}): create one with `chronicle bench --out FILE && chronicle regress save {name} --from FILE`")]
    Missing { name: String, path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: crate::ParseError },
    #[error("baseline name {0:?}: use letters, digits, '-', '_' and '.'")]
    BadName(String),
}

fn is_path(spec: &str) -> bool {
    spec.contains('/') || spec.ends_with(".json") || spec.ends_with(".csv")
}

/// Where `spec` (a name or a path) lives.
pub fn resolve(spec: &str, dir: &Path) -> PathBuf {
    if is_path(spec) {
        PathBuf::from(spec)
    } else {
        dir.join(format!("{spec}.json"))
    }
}

/// Reads a sample file.
pub fn read(path: &Path) -> Result<SampleSet, BaselineError> {
    let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Io { path: path.to_owned(), source })?;
    SampleSet::parse(&text).map_err(|source| BaselineError::Parse { path: path.to_owned(), source })
}

/// Loads a baseline by name or path, with a message naming the command that creates it.
pub fn load(spec: &str, dir: &Path) -> Result<SampleSet, BaselineError> {
    let path = resolve(spec, dir);
    if !path.exists() {
        return Err(BaselineError::Missing { name: spec.to_owned(), path });
    }
    read(&path)
}

/// Stores `samples` as the baseline `name` in `dir`.
pub fn save(name: &str, samples: &SampleSet, dir: &Path) -> Result<PathBuf, BaselineError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(BaselineError::BadName(name.to_owned()));
    }
    std::fs::create_dir_all(dir).map_err(|source| BaselineError::Io { path: dir.to_owned(), source })?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, samples.to_json()).map_err(|source| BaselineError::Io { path: path.clone(), source })?;
    Ok(path)
}
