//! What the real servers started as child processes (the registry,
//! Prometheus) share: waiting until one is ready, or has died.

use std::process::Child;
use std::time::{Duration, Instant};

/// A server running as a child process.
pub(crate) trait ChildServer {
    /// The process, while it runs.
    fn child(&mut self) -> Option<&mut Child>;
    /// Its log so far, for an error message.
    fn log(&self) -> String;
    /// Whether it answers.
    fn ready(&self) -> bool;
}

/// Polls `server` every 50 ms until it is ready. Fails, with its log, when
/// the process exits first or `timeout` passes.
pub(crate) fn wait_ready(server: &mut impl ChildServer, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(child) = server.child() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}; its log:\n{}", server.log()));
            }
        }
        if server.ready() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not ready after {timeout:?}; its log:\n{}",
                server.log()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Closes `child`'s stdin (its watchdog then stops the server) and waits up
/// to `timeout` for it to exit; whether it did.
pub(crate) fn exits_after_stdin_closes(child: &mut Child, timeout: Duration) -> bool {
    drop(child.stdin.take());
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => return false,
        }
    }
}
