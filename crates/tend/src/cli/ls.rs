//! `tend ls`: every tend this user runs, found by the control sockets in the runtime dir, with
//! its pid, uptime, config and how many instances are in which state. A socket nobody answers
//! on (left by a tend that was killed) is skipped; a tend started with `--socket` elsewhere is
//! not in the runtime dir, so not listed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tend_proto::{encode, Request, StatusArgs};

use super::conn::Connection;
use super::render::uptime;
use super::{stdout_failure, Failure, EXIT_FAILED};

/// One running tend, as `tend ls --json` prints it.
#[derive(Debug, Serialize)]
pub struct RunningTend {
    /// Its pid.
    pub pid: u32,
    /// The config it runs (absolute).
    pub config: String,
    /// Its control socket.
    pub socket: PathBuf,
    /// When it started, in milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// How many instances it has.
    pub instances: usize,
    /// How many are in each state (states with none left out).
    pub states: BTreeMap<String, usize>,
}

/// The tends whose sockets are in `dir`, by config.
pub fn find(dir: &Path) -> Vec<RunningTend> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut sockets: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "sock"))
        .collect();
    sockets.sort();
    let mut found: Vec<RunningTend> = sockets.into_iter().filter_map(|s| ask(&s)).collect();
    found.sort_by(|a, b| a.config.cmp(&b.config));
    found
}

/// What the tend at `socket` says of itself, if one answers there.
fn ask(socket: &Path) -> Option<RunningTend> {
    let mut conn = Connection::open(socket, socket).ok()?;
    let hello = conn.hello()?.clone();
    let id = conn
        .send(Request::Status(StatusArgs { names: Vec::new() }))
        .ok()?;
    let instances = match conn.ok(id).ok()? {
        tend_proto::OkBody::Instances(i) => i.instances,
        _ => return None,
    };
    let mut states = BTreeMap::new();
    for instance in &instances {
        *states.entry(instance.state.to_string()).or_insert(0) += 1;
    }
    Some(RunningTend {
        pid: hello.pid,
        config: hello.config,
        socket: socket.to_owned(),
        started_ms: hello.started_ms,
        instances: instances.len(),
        states,
    })
}

/// Prints the tends of the runtime dir: a table, or (`json`) a JSON array.
pub fn run(json: bool, out: &mut dyn Write) -> Result<(), Failure> {
    let dir = tend_os::runtime_dir()
        .map_err(|e| Failure::report(EXIT_FAILED, format!("the runtime dir: {e}")))?;
    let found = find(&dir);
    if json {
        return out.write_all(&encode(&found)).map_err(stdout_failure);
    }
    let now_ms = tend_core::time::unix_millis(std::time::SystemTime::now());
    out.write_all(table(&found, now_ms).as_bytes())
        .map_err(stdout_failure)
}

/// The table of `tend ls`.
///
/// ```text
/// PID   UPTIME  INSTANCES  STATES                CONFIG
/// 4242  2h03m   5          4 running, 1 failed   /home/me/app/tend.toml
/// ```
pub fn table(found: &[RunningTend], now_ms: u64) -> String {
    if found.is_empty() {
        return "no tend is running for this user\n".to_owned();
    }
    let rows: Vec<[String; 5]> = found
        .iter()
        .map(|s| {
            let states: Vec<String> = s.states.iter().map(|(k, n)| format!("{n} {k}")).collect();
            [
                s.pid.to_string(),
                uptime(s.started_ms.map(|t| now_ms.saturating_sub(t))),
                s.instances.to_string(),
                if states.is_empty() {
                    "-".to_owned()
                } else {
                    states.join(", ")
                },
                s.config.clone(),
            ]
        })
        .collect();
    let header = ["PID", "UPTIME", "INSTANCES", "STATES", "CONFIG"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == row.len() - 1 {
                    cell.clone()
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        text.push_str(&cells.join("  "));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_each_tend_with_its_states() {
        let found = [RunningTend {
            pid: 4242,
            config: "/home/me/app/tend.toml".into(),
            socket: "/run/user/1000/tend/x.sock".into(),
            started_ms: Some(1_000),
            instances: 5,
            states: [("failed".to_owned(), 1), ("running".to_owned(), 4)]
                .into_iter()
                .collect(),
        }];
        assert_eq!(
            table(&found, 1_000 + 7_380_000),
            "\
PID   UPTIME  INSTANCES  STATES               CONFIG
4242  2h03m   5          1 failed, 4 running  /home/me/app/tend.toml
"
        );
        assert_eq!(table(&[], 0), "no tend is running for this user\n");
    }
}
