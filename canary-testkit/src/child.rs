//! What the real servers started as child processes (the registry,
//! Prometheus) share: starting one on a free port, waiting until it is
//! ready or has died, stopping it.

use std::net::{SocketAddr, TcpListener};
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
    /// Stops the process (a start that failed, or the end of a test).
    fn stop(&mut self);
}

/// Starts `server` on a free loopback port: `spawn` configures it for
/// `addr` and starts its process. The port is free when we look; another
/// process may take it first, so a start that does not become ready is
/// stopped and retried on a new port, three times in all. The error is the
/// last attempt's, with its log.
pub(crate) fn start_on_free_port<S: ChildServer>(
    server: &mut S,
    mut spawn: impl FnMut(&mut S, SocketAddr),
) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..3 {
        spawn(server, ([127, 0, 0, 1], free_port()).into());
        match wait_ready(server, Duration::from_secs(20)) {
            Ok(()) => return Ok(()),
            Err(why) => {
                last = why;
                server.stop();
            }
        }
    }
    Err(last)
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `server` every 50 ms until it is ready. Fails, with its log, when
/// the process exits first or `timeout` passes.
fn wait_ready(server: &mut impl ChildServer, timeout: Duration) -> Result<(), String> {
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
