//! Control groups: finding the hierarchies tend may use, making a cgroup per instance, and
//! what the kernel says of them (members, OOM kills), and `cgroup.kill`.
//!
//! The hierarchies are found from `/proc/self/mountinfo` and `/proc/self/cgroup`, never from
//! a fixed path: machines differ (cgroup2 at `/sys/fs/cgroup`, or a hybrid with cgroup2 at
//! `/sys/fs/cgroup/unified` holding no controllers and cgroup v1 controllers such as
//! `memory` beside it). tend makes its cgroups under its own: a directory `tend-<id>` there,
//! one directory per instance under it, and a leaf per run, which the child joins itself
//! before its exec (it writes `0` to the leaf's `cgroup.procs`, through a file tend opened), so
//! that nothing it starts can be outside.
//!
//! Plain files, no `unsafe`.

use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where tend may make cgroups, found once at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hierarchies {
    /// tend's own cgroup in the cgroup2 hierarchy (an absolute path under its mount), if
    /// there is one.
    pub unified: Option<PathBuf>,
    /// tend's own cgroup in a cgroup v1 hierarchy with the `memory` controller, if any.
    pub memory_v1: Option<PathBuf>,
    /// tend's own cgroup in a cgroup v1 hierarchy with the `cpu` controller, if any.
    pub cpu_v1: Option<PathBuf>,
    /// tend's own cgroup in a cgroup v1 hierarchy with the `pids` controller, if any.
    pub pids_v1: Option<PathBuf>,
}

/// One line of `/proc/self/mountinfo` that mounts a cgroup file system.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    /// Where it is mounted.
    point: PathBuf,
    /// The path of the hierarchy that is the mount's root (usually `/`).
    root: String,
    /// `true` for cgroup2.
    unified: bool,
    /// For v1, the controllers of the hierarchy (its super options).
    controllers: Vec<String>,
}

impl Hierarchies {
    /// Finds tend's cgroups from this process's mountinfo and cgroup files.
    pub fn find() -> Hierarchies {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Hierarchies::from_texts(&mountinfo, &cgroup)
    }

    /// [`Hierarchies::find`] from the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn from_texts(mountinfo: &str, cgroup: &str) -> Hierarchies {
        let mounts: Vec<CgroupMount> = mountinfo.lines().filter_map(parse_mount).collect();
        let mut found = Hierarchies::default();
        for line in cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                if let Some(mount) = mounts.iter().find(|m| m.unified) {
                    found.unified = join_under(mount, path);
                }
            } else {
                for (controller, slot) in [
                    ("memory", &mut found.memory_v1),
                    ("cpu", &mut found.cpu_v1),
                    ("pids", &mut found.pids_v1),
                ] {
                    if !controllers.split(',').any(|c| c == controller) {
                        continue;
                    }
                    if let Some(mount) = mounts
                        .iter()
                        .find(|m| !m.unified && m.controllers.iter().any(|c| c == controller))
                    {
                        *slot = join_under(mount, path);
                    }
                }
            }
        }
        found
    }
}

/// A cgroup2 mount, or a v1 mount with its controllers, from one mountinfo line.
fn parse_mount(line: &str) -> Option<CgroupMount> {
    // id parent major:minor root mount-point options [optional fields] - fstype source super
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    let root = unescape(fields.get(3)?);
    let point = PathBuf::from(unescape(fields.get(4)?));
    let mut after = after.split(' ');
    let fstype = after.next()?;
    let _source = after.next();
    let options = after.next().unwrap_or("");
    match fstype {
        "cgroup2" => Some(CgroupMount {
            point,
            root,
            unified: true,
            controllers: Vec::new(),
        }),
        "cgroup" => Some(CgroupMount {
            point,
            root,
            unified: false,
            controllers: options.split(',').map(str::to_owned).collect(),
        }),
        _ => None,
    }
}

/// mountinfo's octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = (bytes[i] == b'\\')
            .then(|| bytes.get(i + 1..i + 4))
            .flatten()
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match code {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of cgroup `path` (as /proc/self/cgroup names it) under `mount`, if the
/// mount shows it: a mount of a sub-hierarchy shows only what is below its root (`/docker/x`
/// shows `/docker/x/tend`, not `/docker/xy`), and a cgroup outside the process's cgroup
/// namespace is named with `..` (`/../other`), which no mount of the namespace shows.
fn join_under(mount: &CgroupMount, path: &str) -> Option<PathBuf> {
    let relative = if mount.root == "/" {
        path
    } else {
        let below = path.strip_prefix(mount.root.as_str())?;
        if !(below.is_empty() || below.starts_with('/')) {
            return None;
        }
        below
    };
    // Below the mount's root (which may itself be named with `..`: a mount made outside the
    // namespace), a `..` would leave the mount.
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    let relative = relative.trim_start_matches('/');
    Some(if relative.is_empty() {
        mount.point.clone()
    } else {
        mount.point.join(relative)
    })
}

/// A cgroup directory tend made (or found, left by a predecessor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// Its directory.
    pub dir: PathBuf,
}

impl Cgroup {
    /// Makes the cgroup `dir` (and its parents) if it does not exist yet.
    pub fn create(dir: &Path) -> io::Result<Cgroup> {
        match fs::create_dir_all(dir) {
            Ok(()) => Ok(Cgroup {
                dir: dir.to_owned(),
            }),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("making the cgroup {}: {e}", dir.display()),
            )),
        }
    }

    /// Opens its `cgroup.procs` for writing: the child writes `0` to it to join (see
    /// [`crate::ChildAction::JoinCgroup`]).
    pub fn procs_for_joining(&self) -> io::Result<OwnedFd> {
        let path = self.dir.join("cgroup.procs");
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(OwnedFd::from(file))
    }

    /// Opens its directory (`O_PATH`), for a child to start in it (see
    /// [`crate::ChildAction::StartInCgroup`]; cgroup2 only).
    pub fn open_dir(&self) -> io::Result<OwnedFd> {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(&self.dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.dir.display())))?;
        Ok(OwnedFd::from(file))
    }

    /// Writes `value` to the cgroup's file `name` (a limit, `cgroup.kill`).
    pub fn write(&self, name: &str, value: &str) -> io::Result<()> {
        let path = self.dir.join(name);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        file.write_all(value.as_bytes())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// Whether any process is in it or below it: cgroup2's `cgroup.events` (`populated 1`),
    /// else whether its `cgroup.procs` lists any.
    pub fn populated(&self) -> bool {
        if let Ok(events) = fs::read_to_string(self.dir.join("cgroup.events")) {
            return events.lines().any(|l| l == "populated 1");
        }
        !self.pids().is_empty()
    }

    /// The processes in it (not below it).
    pub fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every process in it and below it at once: cgroup2's `cgroup.kill` (Linux 5.14).
    /// `Ok(false)` when the kernel has no `cgroup.kill` here.
    pub fn kill(&self) -> io::Result<bool> {
        if !self.dir.join("cgroup.kill").exists() {
            return Ok(false);
        }
        self.write("cgroup.kill", "1").map(|()| true)
    }

    /// How many times the OOM killer killed a process in it: cgroup2's `memory.events`
    /// `oom_kill`, or v1's `memory.oom_control` `oom_kill`; 0 when neither says.
    pub fn oom_kills(&self) -> u64 {
        for (file, key) in [
            ("memory.events", "oom_kill "),
            ("memory.oom_control", "oom_kill "),
        ] {
            if let Ok(text) = fs::read_to_string(self.dir.join(file)) {
                if let Some(n) = text
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|n| n.trim().parse().ok())
                {
                    return n;
                }
            }
        }
        0
    }

    /// The controllers it has (cgroup2's `cgroup.controllers`): those it may hand down.
    pub fn controllers(&self) -> Vec<String> {
        self.words("cgroup.controllers")
    }

    /// The controllers it hands down to its children (cgroup2's `cgroup.subtree_control`).
    pub fn subtree_control(&self) -> Vec<String> {
        self.words("cgroup.subtree_control")
    }

    fn words(&self, file: &str) -> Vec<String> {
        fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// Removes the cgroup, which must be empty (no process, no child cgroup): `Ok(false)`
    /// when it is busy or already gone.
    pub fn remove(&self) -> io::Result<bool> {
        match fs::remove_dir(&self.dir) {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EBUSY) | Some(libc::ENOENT) | Some(libc::ENOTEMPTY)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// The leaf under tend's `tend-<id>` cgroup that tend moves itself into: its own cgroup is
/// then free of processes of tend's (cgroup2 hands controllers down only from a cgroup with
/// none of its own), and a live tend's tree is never empty, which tells other tends it is
/// not a dead one's.
pub const SUPERVISOR_LEAF: &str = "supervisor";

impl Cgroup {
    /// Moves process `pid` (all its threads) into this cgroup.
    pub fn enter(&self, pid: u32) -> io::Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }
}

/// What [`hand_down`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandedDown {
    /// The controllers the children of `base` now have.
    pub controllers: Vec<String>,
    /// The controllers it enabled in `own` (they were not already).
    pub enabled_in_own: Vec<String>,
}

/// Hands those of the cgroup2 `controllers` that `own` has down to the children of `base`, a
/// child of `own`: enabled in `own`'s `cgroup.subtree_control`, then in `base`'s. cgroup2
/// lets a cgroup other than the root hand controllers down only while no process lives in it
/// ("no internal processes"): the supervisor moves itself below `base` first (into
/// [`SUPERVISOR_LEAF`], as systemd asks of a service with `Delegate=yes`), and when other
/// processes live in `own` this fails, saying so and what to do. Whatever it enabled before
/// failing is undone.
pub fn hand_down(own: &Cgroup, base: &Cgroup, controllers: &[&str]) -> io::Result<HandedDown> {
    let available = own.controllers();
    let wanted: Vec<&str> = controllers
        .iter()
        .copied()
        .filter(|c| available.iter().any(|a| a == c))
        .collect();
    let mut done = HandedDown::default();
    if wanted.is_empty() {
        return Ok(done);
    }
    let enabled = own.subtree_control();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| !enabled.iter().any(|e| e == c))
        .collect();
    if !missing.is_empty() {
        match own.write("cgroup.subtree_control", &plus(&missing)) {
            Ok(()) => {}
            // EBUSY (`Cgroup::write` keeps the kind, not the errno).
            Err(e) if e.kind() == io::ErrorKind::ResourceBusy => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "{} holds other processes (pids {:?}), and cgroup2 hands controllers \
                         ({}) down only from a cgroup without processes of its own: run tend \
                         in a cgroup of its own (systemd: Delegate=yes; a container: tend as \
                         its first process)",
                        own.dir.display(),
                        own.pids(),
                        missing.join(", ")
                    ),
                ));
            }
            Err(e) => return Err(e),
        }
        done.enabled_in_own = missing.iter().map(|c| (*c).to_owned()).collect();
    }
    if let Err(e) = base.write("cgroup.subtree_control", &plus(&wanted)) {
        let _ = hand_back(own, base, &done);
        return Err(e);
    }
    done.controllers = wanted.iter().map(|c| (*c).to_owned()).collect();
    Ok(done)
}

/// Undoes [`hand_down`] as the supervisor exits, once nothing it started is left: `base`'s
/// children lose the controllers, and `own` stops handing down those `hand_down` enabled, so
/// the supervisor can move back into `own` and leave it as it was found.
pub fn hand_back(own: &Cgroup, base: &Cgroup, handed: &HandedDown) -> io::Result<()> {
    if !handed.controllers.is_empty() {
        base.write("cgroup.subtree_control", &change('-', &handed.controllers))?;
    }
    if !handed.enabled_in_own.is_empty() {
        own.write(
            "cgroup.subtree_control",
            &change('-', &handed.enabled_in_own),
        )?;
    }
    Ok(())
}

/// `+memory +cpu`: the line of `cgroup.subtree_control` that enables `controllers`.
fn plus(controllers: &[&str]) -> String {
    change('+', controllers)
}

/// `+memory +cpu` or `-memory -cpu`.
fn change(sign: char, controllers: &[impl AsRef<str>]) -> String {
    controllers
        .iter()
        .map(|c| format!("{sign}{}", c.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/dc6b
1:cpu:/
0::/
";

    #[test]
    fn a_hybrid_machine_has_cgroup2_for_grouping_and_v1_for_memory() {
        let found = Hierarchies::from_texts(HYBRID_MOUNTS, HYBRID_CGROUP);
        assert_eq!(found.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(
            found.memory_v1,
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/dc6b"))
        );
        assert_eq!(found.cpu_v1, Some(PathBuf::from("/sys/fs/cgroup/cpu")));
        assert_eq!(found.pids_v1, Some(PathBuf::from("/sys/fs/cgroup/pids")));
    }

    #[test]
    fn a_pure_cgroup2_machine_and_a_container_with_a_sub_hierarchy() {
        let mounts = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let found = Hierarchies::from_texts(mounts, "0::/user.slice/user-1000.slice/app.scope\n");
        assert_eq!(
            found.unified,
            Some(PathBuf::from(
                "/sys/fs/cgroup/user.slice/user-1000.slice/app.scope"
            ))
        );
        assert_eq!(found.memory_v1, None);
        // A container whose cgroup namespace root is its own cgroup: mounted root `/docker/x`.
        let mounts = "30 25 0:26 /docker/x /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let found = Hierarchies::from_texts(mounts, "0::/docker/x/tend\n");
        assert_eq!(found.unified, Some(PathBuf::from("/sys/fs/cgroup/tend")));
        // Not below the mount's root, though its name begins the same: not shown there.
        let found = Hierarchies::from_texts(mounts, "0::/docker/xy/tend\n");
        assert_eq!(found.unified, None);
        // A cgroup outside the namespace (tend moved out of it, or entered from outside):
        // `..`, never a directory under the mount's parent.
        let mounts = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let found = Hierarchies::from_texts(mounts, "0::/../../user.slice/x\n");
        assert_eq!(found.unified, None);
        // A mount whose root is itself outside the namespace shows what is below it.
        let mounts = "30 25 0:26 /.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let found = Hierarchies::from_texts(mounts, "0::/../c\n");
        assert_eq!(found.unified, Some(PathBuf::from("/sys/fs/cgroup/c")));
        // No cgroup file system: nothing.
        assert_eq!(
            Hierarchies::from_texts("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n", "0::/\n"),
            Hierarchies::default()
        );
    }

    #[test]
    fn mount_points_with_spaces_are_unescaped() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }
}
