//! A standalone ZooKeeper (Debian's package, run as a plain Java process) on a free
//! loopback port, so a ClickHouse server can host Replicated*MergeTree tables.

use crate::process::{free_port, locate, wait_until, ServerProcess};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A ZooKeeper server on loopback.
#[derive(Debug)]
pub struct ZooKeeper {
    /// Client port.
    pub port: u16,
    process: ServerProcess,
}

/// Where Debian's `zookeeper` package puts the server jar (its manifest names the
/// dependencies); `$PENSTOCK_ZOOKEEPER_JAR` overrides.
fn zookeeper_jar() -> PathBuf {
    locate("PENSTOCK_ZOOKEEPER_JAR", &[PathBuf::from("/usr/share/java/zookeeper.jar")], "zookeeper.jar")
}

impl ZooKeeper {
    /// Starts a server keeping its data in `dir/data`, and waits until it serves clients.
    pub fn start_in(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("data"))?;
        let port = free_port();
        let cfg = format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\nmaxClientCnxns=0\n4lw.commands.whitelist=srvr\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("zoo.cfg"), cfg)?;
        let jar = zookeeper_jar();
        if !jar.exists() {
            return Err(std::io::Error::other(format!(
                "{} not found: install Debian's zookeeper package (scripts/install.sh does)",
                jar.display()
            )));
        }
        let args = vec![
            "-Xmx256m".into(),
            "-cp".into(),
            jar.display().to_string(),
            "org.apache.zookeeper.server.ZooKeeperServerMain".into(),
            dir.join("zoo.cfg").display().to_string(),
        ];
        let java = locate("PENSTOCK_JAVA", &[PathBuf::from("/usr/bin/java")], "java");
        let process = ServerProcess::spawn("zookeeper", java, args, dir)?;
        let mut z = ZooKeeper { port, process };
        wait_until(&mut z.process, Duration::from_secs(60), || serving(port))?;
        Ok(z)
    }

    /// The server process (PID, kill for fault tests).
    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }

    /// Leaves the server running after this value is dropped.
    pub fn detach(&mut self) {
        self.process.detached = true;
    }
}

/// True when the server answers the `srvr` four-letter command as a running server.
fn serving(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = String::new();
    s.write_all(b"srvr").is_ok() && s.read_to_string(&mut answer).is_ok() && answer.contains("Mode: standalone")
}
