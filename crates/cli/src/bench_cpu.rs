//! CPU time spent by this process and by the PostgreSQL server processes, read from `/proc`,
//! so `tally bench ingest` can say where each event's CPU went, not only how fast it was: on a
//! shared two-core machine the rate alone does not tell the server's cost from PostgreSQL's.

use std::fs;

/// Linux reports `/proc/<pid>/stat` times in USER_HZ, which is 100 on every architecture
/// Linux supports (the kernel converts from its internal HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) of this process and of every process named `postgres`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    pub own: f64,
    pub postgres: f64,
}

impl CpuSample {
    pub fn now() -> Self {
        let mut sample = CpuSample {
            own: process_seconds("self").unwrap_or(0.0),
            postgres: 0.0,
        };
        let Ok(entries) = fs::read_dir("/proc") else {
            return sample;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres")
            {
                sample.postgres += process_seconds(pid).unwrap_or(0.0);
            }
        }
        sample
    }

    /// CPU used since `earlier`.
    pub fn since(&self, earlier: &CpuSample) -> CpuSample {
        CpuSample {
            own: self.own - earlier.own,
            postgres: self.postgres - earlier.postgres,
        }
    }
}

fn process_seconds(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the numeric fields follow its closing ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}
