//! CPU time and memory of a process, read from `/proc/<pid>/stat` and
//! `/proc/<pid>/status`: the numbers `top` and `time` report, for the benchmark's
//! "CPU-seconds per million events" of each process (Penstock, the ClickHouse server,
//! the broker).
//!
//! `utime` and `stime` count every thread of the process, in clock ticks
//! (`sysconf(_SC_CLK_TCK)`, 100 on Linux); children are not included — none of the
//! measured servers forks workers.

use std::path::Path;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessReading {
    /// User-mode CPU, in clock ticks.
    pub user_ticks: u64,
    /// Kernel-mode CPU, in clock ticks.
    pub system_ticks: u64,
    /// Resident memory now, KiB.
    pub rss_kib: u64,
    /// Peak resident memory since the process started (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
}

impl ProcessReading {
    /// User + system CPU seconds, given the clock tick rate.
    pub fn cpu_seconds(&self, ticks_per_second: u64) -> f64 {
        (self.user_ticks + self.system_ticks) as f64 / ticks_per_second.max(1) as f64
    }
}

/// The kernel's clock tick rate for `/proc` times.
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Reads process `pid`; `None` once it has exited.
pub fn read(pid: u32) -> Option<ProcessReading> {
    read_from(&Path::new("/proc").join(pid.to_string()))
}

/// Reads from a `/proc/<pid>`-shaped directory.
pub fn read_from(dir: &Path) -> Option<ProcessReading> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let (user_ticks, system_ticks) = parse_stat_times(&stat)?;
    Some(ProcessReading {
        user_ticks,
        system_ticks,
        rss_kib: status_kib(&status, "VmRSS:").unwrap_or(0),
        peak_rss_kib: status_kib(&status, "VmHWM:").unwrap_or(0),
    })
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command
/// name (field 2) is in parentheses and may itself hold spaces and parentheses, so
/// fields are counted from the last `)`.
pub fn parse_stat_times(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace();
    // fields[0] is field 3 (state); utime is field 14 → index 11.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// The value of a `Key:   1234 kB` line of `/proc/<pid>/status`, in KiB.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_ascii_whitespace().next()?.parse().ok()
}

/// Follows one process through a measured interval: CPU used since [`start`](Self::start),
/// and the highest resident memory seen by [`sample`](Self::sample) calls.
#[derive(Debug, Clone)]
pub struct ProcessMeter {
    /// What the process is (e.g. `clickhouse-server`).
    pub role: String,
    /// Its PID.
    pub pid: u32,
    first: Option<ProcessReading>,
    last: Option<ProcessReading>,
    peak_rss_kib: u64,
}

impl ProcessMeter {
    /// Starts measuring `pid` now.
    pub fn start(role: &str, pid: u32) -> Self {
        let first = read(pid);
        let peak = first.map_or(0, |r| r.rss_kib);
        ProcessMeter { role: role.to_string(), pid, first, last: first, peak_rss_kib: peak }
    }

    /// Takes a reading (call regularly: the peak is the highest `VmRSS` seen).
    pub fn sample(&mut self) {
        if let Some(r) = read(self.pid) {
            self.peak_rss_kib = self.peak_rss_kib.max(r.rss_kib);
            self.last = Some(r);
        }
    }

    /// Folds in a reading taken elsewhere (tests, or a process's own final report).
    pub fn observe(&mut self, r: ProcessReading) {
        if self.first.is_none() {
            self.first = Some(r);
        }
        self.peak_rss_kib = self.peak_rss_kib.max(r.rss_kib);
        self.last = Some(r);
    }

    /// Uses the process's own lifetime peak (`VmHWM`) too: right for a process started
    /// for this interval alone.
    pub fn include_lifetime_peak(&mut self) {
        if let Some(r) = self.last {
            self.peak_rss_kib = self.peak_rss_kib.max(r.peak_rss_kib);
        }
    }

    /// CPU seconds between the first and the last reading.
    pub fn cpu_seconds(&self, ticks_per_second: u64) -> Option<f64> {
        let (a, b) = (self.first?, self.last?);
        let ticks = (b.user_ticks + b.system_ticks).checked_sub(a.user_ticks + a.system_ticks)?;
        Some(ticks as f64 / ticks_per_second.max(1) as f64)
    }

    /// Highest resident memory seen, MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line from a clickhouse-server, with a name holding ") (" to test the parsing.
    const STAT: &str = "4242 (clickhouse) (srv) S 1 4242 4242 0 -1 4194560 91830 0 0 0 1234 567 0 0 20 0 \
                        52 0 1179063 2431614976 56034 18446744073709551615 1 1 0 0 0 0 0 4096 1260 0 0 0 17 1 0 0";

    #[test]
    fn stat_times_are_fields_14_and_15() {
        assert_eq!(parse_stat_times(STAT), Some((1234, 567)));
        assert_eq!(parse_stat_times("1 (x) S 1"), None);
        assert_eq!(parse_stat_times("no parenthesis"), None);
    }

    #[test]
    fn status_values_in_kib() {
        let status = "Name:\tclickhouse\nVmHWM:\t  312456 kB\nVmRSS:\t  298000 kB\nThreads:\t52\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(298_000));
        assert_eq!(status_kib(status, "VmHWM:"), Some(312_456));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn reads_a_proc_shaped_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stat"), STAT).unwrap();
        std::fs::write(dir.path().join("status"), "VmHWM:\t 2048 kB\nVmRSS:\t 1024 kB\n").unwrap();
        let r = read_from(dir.path()).unwrap();
        assert_eq!(r, ProcessReading { user_ticks: 1234, system_ticks: 567, rss_kib: 1024, peak_rss_kib: 2048 });
        assert!((r.cpu_seconds(100) - 18.01).abs() < 1e-9);
    }

    #[test]
    fn meter_counts_cpu_between_readings_and_keeps_the_peak() {
        let mut m = ProcessMeter { role: "x".into(), pid: 0, first: None, last: None, peak_rss_kib: 0 };
        assert_eq!(m.cpu_seconds(100), None);
        let at = |u, s, rss| ProcessReading { user_ticks: u, system_ticks: s, rss_kib: rss, peak_rss_kib: 900_000 };
        m.observe(at(1000, 100, 50_000));
        m.observe(at(1150, 130, 80_000));
        m.observe(at(1300, 150, 60_000));
        assert!((m.cpu_seconds(100).unwrap() - 3.5).abs() < 1e-9);
        assert_eq!(m.peak_rss_mib(), 80_000.0 / 1024.0);
        m.include_lifetime_peak();
        assert_eq!(m.peak_rss_mib(), 900_000.0 / 1024.0);
    }

    #[test]
    fn this_process_burns_measurable_cpu() {
        let me = std::process::id();
        let mut m = ProcessMeter::start("self", me);
        // Spin until the kernel has charged at least two ticks to this process.
        let mut x = 0u64;
        let t = ticks_per_second();
        while m.cpu_seconds(t).unwrap_or(0.0) < 2.0 / t as f64 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            m.sample();
        }
        assert!(x != 1);
        assert!(m.peak_rss_mib() > 0.0);
        assert_eq!(t, 100, "Linux reports /proc times in USER_HZ = 100");
    }
}
