//! [`GhaError`]: what can go wrong talking to the runner.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// An error of the GitHub Actions adapter. Messages name the output or file
/// involved, never an output's value (which may be sensitive).
#[derive(Debug)]
#[non_exhaustive]
pub enum GhaError {
    /// An output name the runner would not accept.
    InvalidName {
        /// The name as given (escaped for display).
        name: String,
    },
    /// The heredoc delimiter occurs in the output's name or value, so the
    /// runner would cut the value short.
    DelimiterCollision {
        /// The output's name.
        name: String,
    },
    /// Reading or writing a runner file failed.
    Io {
        /// The file (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`), if any.
        path: Option<PathBuf>,
        /// The cause.
        source: io::Error,
    },
    /// A file-command file (`$GITHUB_OUTPUT` format) did not parse under the
    /// runner's rules.
    Parse {
        /// The 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl GhaError {
    pub(crate) fn io(path: Option<PathBuf>, source: io::Error) -> Self {
        Self::Io { path, source }
    }
}

impl fmt::Display for GhaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { name } => write!(
                f,
                "output name `{name}` is invalid: start with a letter or `_`, then letters, digits, `-` or `_`"
            ),
            Self::DelimiterCollision { name } => write!(
                f,
                "output `{name}`: the heredoc delimiter occurs in its name or value; refusing to write it"
            ),
            Self::Io { path: Some(path), .. } => write!(f, "cannot write {}", path.display()),
            Self::Io { path: None, .. } => f.write_str("cannot write to the runner"),
            Self::Parse { line, message } => write!(f, "line {line}: {message}"),
        }
    }
}

impl std::error::Error for GhaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<io::Error> for GhaError {
    fn from(source: io::Error) -> Self {
        Self::io(None, source)
    }
}
