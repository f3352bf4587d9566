#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod command;
pub mod env;
pub mod error;
pub mod output;
pub mod publish;
pub mod summary;

pub use command::{
    command_line, escape_data, escape_property, mask_lines, Annotation, Commands, Level, StopToken,
};
pub use env::GithubEnv;
pub use error::GhaError;
pub use output::{
    append_outputs, delimiter, format_output, is_valid_name, parse_file_commands, write_outputs,
};
pub use publish::{publish, Published, ANNOTATION_MESSAGE_LIMIT};
pub use summary::{append_summary, fit_summary, SummaryWritten, SUMMARY_LIMIT};
