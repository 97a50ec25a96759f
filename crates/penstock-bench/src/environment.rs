//! Facts about the machine a benchmark ran on, from `/proc` and `/etc/os-release`.

/// The first `model name` of a `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// `MemTotal` of a `/proc/meminfo` text, GiB.
pub fn memory_gib(meminfo: &str) -> Option<f64> {
    crate::measure::procfs::status_kib(meminfo, "MemTotal:").map(|kib| kib as f64 / (1024.0 * 1024.0))
}

/// `PRETTY_NAME` of an `/etc/os-release` text.
pub fn os_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_string())
}

/// CPU model, logical cores, memory (GiB) and OS (with the kernel) of this machine.
pub fn this_machine() -> (String, usize, f64, String) {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = memory_gib(&read("/proc/meminfo")).unwrap_or(0.0);
    let os = format!(
        "{}, Linux {}",
        os_name(&read("/etc/os-release")).unwrap_or_else(|| "Linux".into()),
        read("/proc/sys/kernel/osrelease").trim()
    );
    (cpu, cores, memory, os)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_and_os_release() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Intel(R) Xeon(R) CPU @ 2.20GHz"));
        assert_eq!(memory_gib("MemTotal:       25165824 kB\nMemFree: 1 kB\n"), Some(24.0));
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(os_name(os).as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        let (_, cores, _, _) = this_machine();
        assert!(cores >= 1);
    }
}
