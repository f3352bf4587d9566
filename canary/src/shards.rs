//! Reading the partial reports of a sharded verify, for `decide`.

use std::path::{Path, PathBuf};

use canary_core::shard::Partial;
use canary_core::UsageError;

use crate::gate::read_report;

/// Every `*.json` file in `dir` and its subdirectories (an Actions
/// `download-artifact` puts each artifact in a folder of its own), read as
/// a report, in path order. A file that is not a canary report is an error
/// naming it; so is a directory with none.
pub fn read_partials(dir: &Path) -> Result<Vec<Partial>, UsageError> {
    let unreadable = |path: &Path, e: &std::io::Error| {
        UsageError::new(
            format!("reports directory `{}`", path.display()),
            format!("cannot be read ({})", e.kind()),
            "give the directory the shard jobs' `--report` files were downloaded to",
        )
    };
    let mut files = Vec::new();
    let mut dirs = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| unreadable(&d, &e))? {
            let path = entry.map_err(|e| unreadable(&d, &e))?.path();
            if path.is_dir() && depth < 3 {
                dirs.push((path, depth + 1));
            } else if path.extension().is_some_and(|x| x == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(UsageError::new(
            format!("reports directory `{}`", dir.display()),
            "holds no `.json` report",
            "give the directory the shard jobs' `--report` files were downloaded to",
        ));
    }
    files
        .into_iter()
        .map(|path: PathBuf| {
            let report = read_report(&path)?;
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            Ok(Partial { name, report })
        })
        .collect()
}
