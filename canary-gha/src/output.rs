//! Step outputs in `$GITHUB_OUTPUT`'s heredoc form, and a parser with the
//! runner's rules to read them back.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use rand::RngCore as _;

use crate::error::GhaError;

/// A fresh delimiter, `ghadelimiter_<random uuid v4>`, as `@actions/core`
/// makes them.
pub fn delimiter() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex(&b);
    format!(
        "ghadelimiter_{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Whether the runner (and `steps.<id>.outputs.<name>`) accepts `name`: a
/// letter or `_`, then letters, digits, `-` or `_`; at most 100 characters.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 100
}

/// One output in heredoc form with `delimiter`:
/// `name<<delimiter\nvalue\ndelimiter\n` (`@actions/core`'s
/// `prepareKeyValueMessage`). Refuses an invalid name, and a delimiter that
/// occurs in the name or the value (the runner would end the value there).
pub fn format_output(name: &str, value: &str, delimiter: &str) -> Result<String, GhaError> {
    if !is_valid_name(name) {
        return Err(GhaError::InvalidName {
            name: name.escape_debug().to_string(),
        });
    }
    if delimiter.is_empty() || name.contains(delimiter) || value.contains(delimiter) {
        return Err(GhaError::DelimiterCollision {
            name: name.to_string(),
        });
    }
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// Writes `outputs` in heredoc form, each with a fresh random delimiter
/// (drawn again in the astronomically unlikely case the value contains it).
/// Every name is checked before anything is written.
pub fn write_outputs(out: &mut impl Write, outputs: &[(String, String)]) -> Result<(), GhaError> {
    let mut text = String::new();
    for (name, value) in outputs {
        let mut attempts = 0;
        let formatted = loop {
            match format_output(name, value, &delimiter()) {
                Err(GhaError::DelimiterCollision { .. }) if attempts < 8 => attempts += 1,
                other => break other?,
            }
        };
        text.push_str(&formatted);
    }
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Appends `outputs` to the file at `path` (`$GITHUB_OUTPUT`).
pub fn append_outputs(path: &Path, outputs: &[(String, String)]) -> Result<(), GhaError> {
    let io = |e| GhaError::io(Some(path.to_path_buf()), e);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    write_outputs(&mut file, outputs).map_err(|e| match e {
        GhaError::Io { source, .. } => io(source),
        other => other,
    })
}

/// Parses a file-command file (`$GITHUB_OUTPUT`, `$GITHUB_ENV`) with the
/// runner's rules (`FileCommandManager` in `actions/runner`): lines are split
/// on LF (a CR before it belongs to the line break); empty lines are skipped;
/// `NAME=VALUE` when `=` comes before any `<<`; otherwise `NAME<<DELIMITER`,
/// whose value is the raw text up to the line break before the first line
/// equal to `DELIMITER`.
pub fn parse_file_commands(text: &str) -> Result<Vec<(String, String)>, GhaError> {
    let mut pairs = Vec::new();
    let mut reader = Lines { text, index: 0 };
    let mut line_no = 0;
    while let Some((line, _)) = reader.next_line() {
        line_no += 1;
        if line.is_empty() {
            continue;
        }
        let equals = line.find('=');
        let heredoc = line.find("<<");
        match (equals, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                pairs.push((line[..e].to_string(), line[e + 1..].to_string()));
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(GhaError::Parse {
                        line: line_no,
                        message: format!("invalid heredoc header `{}`", line.escape_debug()),
                    });
                }
                let start = reader.index;
                let mut end = start;
                loop {
                    let Some((value_line, newline)) = reader.next_line() else {
                        return Err(GhaError::Parse {
                            line: line_no,
                            message: format!("matching delimiter not found for `{name}`"),
                        });
                    };
                    line_no += 1;
                    if value_line == delimiter {
                        break;
                    }
                    if newline.is_empty() {
                        return Err(GhaError::Parse {
                            line: line_no,
                            message: "EOF marker missing new line".to_string(),
                        });
                    }
                    end = reader.index - newline.len();
                }
                pairs.push((name.to_string(), text[start..end.max(start)].to_string()));
            }
            _ => {
                return Err(GhaError::Parse {
                    line: line_no,
                    message: format!("invalid format `{}`", line.escape_debug()),
                })
            }
        }
    }
    Ok(pairs)
}

struct Lines<'a> {
    text: &'a str,
    index: usize,
}

impl<'a> Lines<'a> {
    /// The next line and the line break that ended it (`"\n"`, `"\r\n"`, or
    /// `""` at the end of the text).
    fn next_line(&mut self) -> Option<(&'a str, &'static str)> {
        if self.index >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.index..];
        let Some(lf) = rest.find('\n') else {
            self.index = self.text.len();
            return Some((rest, ""));
        };
        let (line, newline) = match rest[..lf].strip_suffix('\r') {
            Some(line) => (line, "\r\n"),
            None => (&rest[..lf], "\n"),
        };
        self.index += lf + 1;
        Some((line, newline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_look_like_actions_core() {
        let d = delimiter();
        assert!(d.starts_with("ghadelimiter_"));
        assert_eq!(d.len(), "ghadelimiter_".len() + 36);
        assert_ne!(d, delimiter());
    }

    #[test]
    fn names() {
        for ok in ["outcome", "digest-0", "_x", "failed-checks", "a1"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "1a", "-a", "a b", "a=b", "a<<b", "a\nb", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(matches!(
            format_output("a b", "v", "D"),
            Err(GhaError::InvalidName { .. })
        ));
    }

    #[test]
    fn refuses_a_delimiter_in_the_value() {
        let e = format_output("x", "a\nEOF\nb", "EOF").unwrap_err();
        assert!(matches!(e, GhaError::DelimiterCollision { .. }));
        assert!(!e.to_string().contains("a\nEOF"), "no value in messages");
        assert!(format_output("x", "xEOFx", "EOF").is_err());
        assert!(format_output("EOF", "v", "EOF").is_err());
    }

    #[test]
    fn parses_like_the_runner() {
        let text = "a=1\n\nb<<D\nline 1\r\nline 2\n\nD\nc=x<<y\nd<<E\nE\ne<<F\r\nv\r\nF\r\n";
        let pairs = parse_file_commands(text).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "line 1\r\nline 2\n".into()),
                ("c".into(), "x<<y".into()),
                ("d".into(), String::new()),
                ("e".into(), "v".into()),
            ]
        );
        assert!(parse_file_commands("x<<D\nvalue\n").is_err());
        assert!(parse_file_commands("novalue\n").is_err());
        assert!(parse_file_commands("<<D\nD\n").is_err());
        assert!(parse_file_commands("x<<D\nv").is_err());
    }

    #[test]
    fn append_round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output");
        std::fs::write(&path, "earlier=1\n").unwrap();
        let outputs = vec![
            ("x".to_string(), "multi\nline\n".to_string()),
            ("y".to_string(), String::new()),
        ];
        append_outputs(&path, &outputs).unwrap();
        let parsed = parse_file_commands(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(parsed[0], ("earlier".to_string(), "1".to_string()));
        assert_eq!(&parsed[1..], outputs.as_slice());
        let missing = dir.path().join("no/such/dir");
        let e = append_outputs(&missing, &outputs).unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }
}
