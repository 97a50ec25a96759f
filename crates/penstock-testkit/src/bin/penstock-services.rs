//! `penstock-services up DIR` starts a broker and a ClickHouse server for the demo and
//! writes `DIR/services.env` (addresses and PIDs); `penstock-services down DIR` stops
//! them by PID and removes their files.

use penstock_testkit::{Broker, ClickHouseServer};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(cmd), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: penstock-services up|down DIR");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let result = match cmd.as_str() {
        "up" => up(&dir),
        "down" => down(&dir),
        _ => Err(format!("unknown command `{cmd}`: use up or down")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("penstock-services: {e}");
            ExitCode::FAILURE
        }
    }
}

fn up(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut kafka = Broker::start_in(&dir.join("kafka")).map_err(|e| format!("broker: {e}"))?;
    let mut ch = ClickHouseServer::start_in(&dir.join("clickhouse")).map_err(|e| format!("clickhouse: {e}"))?;
    let (broker_pid, ch_pid) = (kafka.process().pid().unwrap_or(0), ch.process().pid().unwrap_or(0));
    let env = format!(
        "PENSTOCK_KAFKA_BROKERS={}\nPENSTOCK_CLICKHOUSE_URL={}\nPENSTOCK_BROKER_PORT={}\nPENSTOCK_BROKER_PID={}\nPENSTOCK_CLICKHOUSE_PID={}\n",
        kafka.bootstrap(),
        ch.url(),
        kafka.port,
        broker_pid,
        ch_pid,
    );
    std::fs::write(dir.join("services.env"), &env).map_err(|e| e.to_string())?;
    kafka.detach();
    ch.detach();
    print!("{env}");
    Ok(())
}

fn down(dir: &std::path::Path) -> Result<(), String> {
    let env = std::fs::read_to_string(dir.join("services.env"))
        .map_err(|e| format!("no services.env in {}: {e}", dir.display()))?;
    for line in env.lines() {
        if let Some(pid) =
            line.strip_prefix("PENSTOCK_BROKER_PID=").or_else(|| line.strip_prefix("PENSTOCK_CLICKHOUSE_PID="))
        {
            let _ = Command::new("kill").args(["-TERM", pid]).status();
            for _ in 0..200 {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            let _ = Command::new("kill").args(["-KILL", pid]).stderr(std::process::Stdio::null()).status();
        }
    }
    std::fs::remove_dir_all(dir).map_err(|e| e.to_string())
}
