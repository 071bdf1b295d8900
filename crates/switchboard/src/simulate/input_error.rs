//! Bad input to `switchboard simulate`: what was wrong and where (file and line), so the
//! analyst can fix it; the command then exits with status 2 and writes nothing.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with something the user gave the simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file at fault, if the problem is in a file.
    pub file: Option<PathBuf>,
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// A problem on one line of a file.
    pub fn at(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: Some(file.to_path_buf()),
            line: Some(line),
            message: message.into(),
        }
    }

    /// A problem with a whole file.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: Some(file.to_path_buf()),
            line: None,
            message: message.into(),
        }
    }

    /// A problem with an option.
    pub fn option(message: impl Into<String>) -> Self {
        Self {
            file: None,
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: {}", file.display(), self.message),
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for InputError {}
