//! Workflow commands (`::error …::`, `::add-mask::`, `::group::`,
//! `::stop-commands::`), formatted exactly as `@actions/core` formats them.

use std::io::{self, Write};

use canary_core::Secret;
use rand::RngCore as _;

/// Escapes a command's message (`@actions/core`'s `escapeData`):
/// `%` → `%25`, CR → `%0D`, LF → `%0A`.
pub fn escape_data(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a command property's value (`@actions/core`'s
/// `escapeProperty`): as [`escape_data`], plus `:` → `%3A` and `,` → `%2C`.
pub fn escape_property(value: &str) -> String {
    // escape_data's output has no `:` or `,` of its own, so this is exact.
    escape_data(value).replace(':', "%3A").replace(',', "%2C")
}

/// One workflow command line, without the trailing newline, as
/// `@actions/core`'s `Command.toString()` builds it: `::name`, then
/// ` key=value,key=value` for the properties with a non-empty value (in the
/// order given), then `::` and the escaped message.
pub fn command_line(name: &str, properties: &[(&str, &str)], message: &str) -> String {
    let mut line = format!("::{name}");
    let mut first = true;
    for (key, value) in properties.iter().filter(|(_, v)| !v.is_empty()) {
        line.push(if first { ' ' } else { ',' });
        first = false;
        line.push_str(key);
        line.push('=');
        line.push_str(&escape_property(value));
    }
    line.push_str("::");
    line.push_str(&escape_data(message));
    line
}

/// The severity of an [`Annotation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `::error`: fails nothing by itself, shows red.
    Error,
    /// `::warning`
    Warning,
    /// `::notice`
    Notice,
}

impl Level {
    /// The command name.
    pub fn command(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
        }
    }
}

/// An annotation: `::error title=…,file=…,line=…::message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Its severity.
    pub level: Level,
    /// The message (may span lines; escaped when written).
    pub message: String,
    /// The title shown above the message.
    pub title: Option<String>,
    /// The file it points at, relative to the repository.
    pub file: Option<String>,
    /// The first line in `file`.
    pub line: Option<u32>,
    /// The last line in `file`.
    pub end_line: Option<u32>,
    /// The first column.
    pub col: Option<u32>,
    /// The last column.
    pub end_column: Option<u32>,
}

impl Annotation {
    /// An annotation of `level` with `message` and no properties.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
            title: None,
            file: None,
            line: None,
            end_line: None,
            col: None,
            end_column: None,
        }
    }

    /// An `::error`.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Level::Error, message)
    }

    /// A `::warning`.
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Level::Warning, message)
    }

    /// A `::notice`.
    pub fn notice(message: impl Into<String>) -> Self {
        Self::new(Level::Notice, message)
    }

    /// Sets the title.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the file and, optionally, the line.
    #[must_use]
    pub fn with_file(mut self, file: impl Into<String>, line: Option<u32>) -> Self {
        self.file = Some(file.into());
        self.line = line;
        self
    }

    /// The command line, without the trailing newline. Properties come in
    /// `@actions/core`'s order: `title`, `file`, `line`, `endLine`, `col`,
    /// `endColumn`.
    pub fn to_command(&self) -> String {
        let num = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        let (line, end_line, col, end_column) = (
            num(self.line),
            num(self.end_line),
            num(self.col),
            num(self.end_column),
        );
        command_line(
            self.level.command(),
            &[
                ("title", self.title.as_deref().unwrap_or("")),
                ("file", self.file.as_deref().unwrap_or("")),
                ("line", &line),
                ("endLine", &end_line),
                ("col", &col),
                ("endColumn", &end_column),
            ],
            &self.message,
        )
    }
}

/// The lines that mask `secret`: the whole value, and, for a multi-line
/// secret, each non-empty line on its own (the log is masked line by line,
/// so the whole value alone would not hide a line of it). Empty secrets mask
/// nothing.
pub fn mask_lines(secret: &Secret) -> Vec<String> {
    let value = secret.expose();
    let mut values: Vec<&str> = Vec::new();
    if !value.trim().is_empty() {
        values.push(value);
    }
    if value.contains('\n') || value.contains('\r') {
        for line in value.split(['\n', '\r']) {
            if !line.trim().is_empty() && !values.contains(&line) {
                values.push(line);
            }
        }
    }
    values
        .into_iter()
        .map(|v| command_line("add-mask", &[], v))
        .collect()
}

/// The token that `::stop-commands::` pauses command processing with; only
/// a line `::<token>::` resumes it.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "commands stay off until resumed with this token"]
pub struct StopToken(String);

impl StopToken {
    /// A fresh random token (32 hex characters).
    pub fn random() -> Self {
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        Self(crate::output::hex(&raw))
    }

    /// A fixed token, for golden tests.
    pub fn fixed(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Writes workflow commands to a stream (the step's stdout).
///
/// It is built with the secrets to mask, and masks them before writing
/// anything else. It also remembers them and replaces any occurrence with
/// `***` in every later line it writes (and in whatever
/// [`Commands::redact`] is given), so a secret stays hidden even where the
/// runner's masking would miss it (a log viewer outside GitHub, a secret
/// registered after the text was printed).
pub struct Commands<W: Write> {
    out: W,
    secrets: Vec<String>,
}

impl<W: Write> std::fmt::Debug for Commands<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands")
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

impl<W: Write> Commands<W> {
    /// Starts the stream: one `::add-mask::` line per secret (and per line
    /// of a multi-line secret) before anything else.
    pub fn new<'a>(out: W, secrets: impl IntoIterator<Item = &'a Secret>) -> io::Result<Self> {
        let mut commands = Self {
            out,
            secrets: Vec::new(),
        };
        for secret in secrets {
            commands.add_mask(secret)?;
        }
        Ok(commands)
    }

    /// Masks one more secret, e.g. a token obtained during the run. Call it
    /// before the secret can reach any output.
    pub fn add_mask(&mut self, secret: &Secret) -> io::Result<()> {
        for line in mask_lines(secret) {
            writeln!(self.out, "{line}")?;
        }
        let value = secret.expose();
        for part in std::iter::once(value).chain(value.split(['\n', '\r'])) {
            if !part.trim().is_empty() && !self.secrets.iter().any(|s| s == part) {
                self.secrets.push(part.to_string());
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        self.out.flush()
    }

    /// `text` with every masked secret replaced by `***`.
    pub fn redact<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        let mut text = std::borrow::Cow::Borrowed(text);
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = std::borrow::Cow::Owned(text.replace(secret.as_str(), "***"));
            }
        }
        text
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        let line = self.redact(line).into_owned();
        writeln!(self.out, "{line}")
    }

    /// Writes an annotation.
    pub fn annotate(&mut self, annotation: &Annotation) -> io::Result<()> {
        self.write_line(&annotation.to_command())
    }

    /// `::error::message`.
    pub fn error(&mut self, message: &str) -> io::Result<()> {
        self.annotate(&Annotation::error(message))
    }

    /// `::warning::message`.
    pub fn warning(&mut self, message: &str) -> io::Result<()> {
        self.annotate(&Annotation::warning(message))
    }

    /// `::notice::message`.
    pub fn notice(&mut self, message: &str) -> io::Result<()> {
        self.annotate(&Annotation::notice(message))
    }

    /// `::group::title`: folds the lines up to [`Commands::end_group`].
    pub fn group(&mut self, title: &str) -> io::Result<()> {
        self.write_line(&command_line("group", &[], title))
    }

    /// `::endgroup::`
    pub fn end_group(&mut self) -> io::Result<()> {
        writeln!(self.out, "::endgroup::")
    }

    /// `::stop-commands::<token>`: from here on the runner ignores workflow
    /// commands, until [`Commands::resume_commands`] with the token.
    pub fn stop_commands(&mut self, token: &StopToken) -> io::Result<()> {
        writeln!(self.out, "::stop-commands::{}", token.0)
    }

    /// `::<token>::`: the runner processes commands again.
    pub fn resume_commands(&mut self, token: StopToken) -> io::Result<()> {
        let StopToken(token) = token;
        writeln!(self.out, "::{token}::")
    }

    /// Writes text that must not be taken for commands (a response body, an
    /// error from a server) between `::stop-commands::` and the resume line,
    /// with a random token that does not occur in the text.
    pub fn untrusted(&mut self, text: &str) -> io::Result<()> {
        let token = loop {
            let token = StopToken::random();
            if !text.contains(token.as_str()) {
                break token;
            }
        };
        self.untrusted_with(text, token)
    }

    /// As [`Commands::untrusted`], with a given token (for golden tests).
    /// Refuses a token that occurs in the text.
    pub fn untrusted_with(&mut self, text: &str, token: StopToken) -> io::Result<()> {
        if text.contains(token.as_str()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the stop-commands token occurs in the text",
            ));
        }
        self.stop_commands(&token)?;
        let text = self.redact(text).into_owned();
        self.out.write_all(text.as_bytes())?;
        if !text.is_empty() && !text.ends_with('\n') {
            self.out.write_all(b"\n")?;
        }
        self.resume_commands(token)
    }

    /// Writes a plain line (trusted not to hold workflow commands; secrets
    /// are redacted).
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        self.write_line(text)
    }

    /// Flushes the stream.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The stream.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_what_it_masked() {
        let a = Secret::new("hunter2");
        let b = Secret::new("multi\nline-secret");
        let mut c = Commands::new(Vec::new(), [&a, &b]).unwrap();
        c.error("auth failed with hunter2").unwrap();
        c.line("got line-secret back").unwrap();
        c.untrusted("body: multi\nline-secret").unwrap();
        assert_eq!(c.redact("x hunter2 y"), "x *** y");
        let out = String::from_utf8(c.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[..4].iter().all(|l| l.starts_with("::add-mask::")),
            "{out}"
        );
        for line in &lines[4..] {
            assert!(
                !line.contains("hunter2") && !line.contains("line-secret"),
                "{line}"
            );
        }
        assert!(out.contains("::error::auth failed with ***"));
    }

    #[test]
    fn escaping_matches_actions_core() {
        assert_eq!(escape_data("a%b\r\nc:d,e"), "a%25b%0D%0Ac:d,e");
        assert_eq!(escape_property("a%b\r\nc:d,e"), "a%25b%0D%0Ac%3Ad%2Ce");
        // Already-escaped text is escaped again, so it round-trips.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn command_lines() {
        assert_eq!(command_line("error", &[], "m"), "::error::m");
        assert_eq!(
            command_line("error", &[("title", ""), ("file", "")], "m"),
            "::error::m"
        );
        assert_eq!(
            command_line(
                "warning",
                &[("title", "t:1"), ("file", ""), ("line", "3")],
                "x\ny"
            ),
            "::warning title=t%3A1,line=3::x%0Ay"
        );
        let a = Annotation::error("boom")
            .with_title("liveness @ https://t.example")
            .with_file("canary.toml", Some(4));
        assert_eq!(
            a.to_command(),
            "::error title=liveness @ https%3A//t.example,file=canary.toml,line=4::boom"
        );
    }

    #[test]
    fn masks_multi_line_secrets_per_line() {
        assert_eq!(
            mask_lines(&Secret::new("s3cret")),
            vec!["::add-mask::s3cret"]
        );
        assert_eq!(
            mask_lines(&Secret::new("line1\r\nline2\n\nline1")),
            vec![
                "::add-mask::line1%0D%0Aline2%0A%0Aline1",
                "::add-mask::line1",
                "::add-mask::line2",
            ]
        );
        assert!(mask_lines(&Secret::new("")).is_empty());
        assert!(mask_lines(&Secret::new(" \n ")).is_empty());
    }

    #[test]
    fn untrusted_text_is_fenced() {
        let mut c = Commands::new(Vec::new(), []).unwrap();
        c.untrusted_with("::error::fake\n::add-mask::x", StopToken::fixed("t0k"))
            .unwrap();
        assert!(c
            .untrusted_with("has t0k inside", StopToken::fixed("t0k"))
            .is_err());
        c.untrusted("::warning::also").unwrap();
        let out = String::from_utf8(c.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            &lines[..4],
            &[
                "::stop-commands::t0k",
                "::error::fake",
                "::add-mask::x",
                "::t0k::"
            ]
        );
        let token = lines[4].strip_prefix("::stop-commands::").unwrap();
        assert_eq!(token.len(), 32);
        assert_eq!(lines[5], "::warning::also");
        assert_eq!(lines[6], format!("::{token}::"));
    }
}
