//! Child processes owned by a test: started in their own directory, stopped by PID
//! (SIGTERM, then SIGKILL) when dropped, unless detached for the demo script.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// A running server process.
#[derive(Debug)]
pub struct ServerProcess {
    pub(crate) name: &'static str,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) dir: PathBuf,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) child: Option<Child>,
    pub(crate) detached: bool,
}

impl ServerProcess {
    /// Starts `program args` in `dir`, with stdout/stderr to `dir/<name>.out`.
    pub(crate) fn spawn(name: &'static str, program: PathBuf, args: Vec<String>, dir: &Path) -> std::io::Result<Self> {
        Self::spawn_with_env(name, program, args, dir, Vec::new())
    }

    /// Like [`spawn`](Self::spawn), with extra environment variables (kept for restarts).
    pub(crate) fn spawn_with_env(
        name: &'static str,
        program: PathBuf,
        args: Vec<String>,
        dir: &Path,
        env: Vec<(String, String)>,
    ) -> std::io::Result<Self> {
        let mut p = ServerProcess { name, program, args, dir: dir.to_path_buf(), env, child: None, detached: false };
        p.start()?;
        Ok(p)
    }

    pub(crate) fn start(&mut self) -> std::io::Result<()> {
        let out =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(format!("{}.out", self.name)))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start {}: {e}", self.program.display())))?;
        self.child = Some(child);
        Ok(())
    }

    /// PID of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL, no chance to clean up (crash simulation).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The last lines of the process's output, for error messages.
    pub fn output_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("{}.out", self.name))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.detached {
            self.stop();
        }
    }
}

/// Waits until `ready()` holds, or fails after `timeout` with the process output.
pub(crate) fn wait_until(p: &mut ServerProcess, timeout: Duration, ready: impl Fn() -> bool) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        if !p.is_running() {
            return Err(std::io::Error::other(format!("{} exited during start-up:\n{}", p.name, p.output_tail())));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(std::io::Error::other(format!("{} not ready after {timeout:?}:\n{}", p.name, p.output_tail())))
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// Finds a program: the environment variable `var` if set, else the first existing
/// candidate path, else the bare name (resolved through PATH).
pub(crate) fn locate(var: &str, candidates: &[PathBuf], name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    candidates.iter().find(|p| p.exists()).cloned().unwrap_or_else(|| PathBuf::from(name))
}
