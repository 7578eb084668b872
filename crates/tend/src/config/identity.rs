//! Who a process runs as and within what limits: `user`, `group`, `groups`, `umask`,
//! `rlimits`, `nice` and `oom_score_adj`.
//!
//! Users and groups are looked up when the config is read (so `tend check` finds a typo),
//! and what only root may do (another user, a group, a higher hard limit, a lower nice or
//! OOM score) is refused then, with what to do, when tend is not root.

use tend_core::{Identity, Rlimit, RlimitKind, UserIdentity};

use super::error::ConfigError;
use super::read::{Field, Table};
use super::tree::Kind;

type Result<T> = std::result::Result<T, ConfigError>;

/// The identity of `user`, `group` and `groups` in `table`, if any is set.
pub(super) fn identity(table: &Table<'_>) -> Result<Option<Identity>> {
    let user_field = table.get("user");
    let group_field = table.get("group");
    let groups_field = table.get("groups");
    if user_field.is_none() && group_field.is_none() && groups_field.is_none() {
        return Ok(None);
    }
    let euid = tend_os::users::effective_uid();
    let user = match &user_field {
        Some(f) => {
            let name = id_text(f)?;
            let user = tend_os::users::user_by_name(&name)
                .map_err(|e| f.error(format!("looking up user {name:?}: {e}")))?
                .ok_or_else(|| {
                    f.error(format!(
                        "no user {name:?} on this system (`getent passwd {name}` finds none); \
                         create it or fix the name"
                    ))
                })?;
            if euid != 0 && user.uid != euid {
                return Err(f.error(format!(
                    "tend runs as uid {euid}, not root, so it cannot run a process as {name:?} \
                     (uid {}); run tend as root, or remove user",
                    user.uid
                )));
            }
            Some(user)
        }
        None => None,
    };
    let gid = match &group_field {
        Some(f) => {
            let name = id_text(f)?;
            let group = tend_os::users::group_by_name(&name)
                .map_err(|e| f.error(format!("looking up group {name:?}: {e}")))?
                .ok_or_else(|| {
                    f.error(format!(
                        "no group {name:?} on this system (`getent group {name}` finds none); \
                         create it or fix the name"
                    ))
                })?;
            Some((group.gid, f))
        }
        None => None,
    };
    let groups = match &groups_field {
        Some(f) => {
            let items = f.array()?;
            let most = ngroups_max();
            if items.len() > most {
                return Err(f.error(format!(
                    "{} groups, more than a process may have here ({most}, \
                     /proc/sys/kernel/ngroups_max); list fewer",
                    items.len()
                )));
            }
            let mut gids = Vec::new();
            for item in items {
                let name = id_text(&item)?;
                let group = tend_os::users::group_by_name(&name)
                    .map_err(|e| item.error(format!("looking up group {name:?}: {e}")))?
                    .ok_or_else(|| item.error(format!("no group {name:?} on this system")))?;
                gids.push(group.gid);
            }
            Some(gids)
        }
        None => None,
    };
    if euid != 0 {
        if let Some((_, f)) = gid.as_ref().filter(|(gid, _)| *gid != current_gid()) {
            return Err(f.error(format!(
                "tend runs as uid {euid}, not root, so it cannot set another group; run tend \
                 as root, or remove group"
            )));
        }
        if let Some(f) = &groups_field {
            return Err(f.error(format!(
                "tend runs as uid {euid}, not root, so it cannot set supplementary groups; run \
                 tend as root, or remove groups"
            )));
        }
    }
    let gid_value = gid
        .map(|(gid, _)| gid)
        .or(user.as_ref().map(|u| u.gid))
        .unwrap_or_else(current_gid);
    let groups = match (groups, &user) {
        (Some(groups), _) => groups,
        (None, Some(u)) if euid == 0 => {
            tend_os::users::group_list(&u.name, gid_value).map_err(|e| {
                user_field
                    .as_ref()
                    .expect("a user was given")
                    .error(format!("listing the groups of {}: {e}", u.name))
            })?
        }
        (None, _) => Vec::new(),
    };
    Ok(Some(Identity {
        user: user.map(|u| UserIdentity {
            name: u.name,
            uid: u.uid,
            home: u.home,
        }),
        gid: gid_value,
        groups,
    }))
}

/// The most supplementary groups a process may have (`NGROUPS_MAX`, 65536 on Linux since 2.6.4).
fn ngroups_max() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/ngroups_max")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(65536)
}

/// tend's own group id.
fn current_gid() -> u32 {
    // Read from /proc so that this module needs no unsafe: the Gid line's effective id.
    own_status("Gid")
        .and_then(|ids| ids.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The value of line `key` of `/proc/self/status` (`Gid`, `CapEff`), trimmed.
fn own_status(key: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        Some(value.trim().to_owned())
    })
}

/// A user or group given as a name or a number.
fn id_text(f: &Field<'_>) -> Result<String> {
    match &f.node.kind {
        Kind::Integer(_) => Ok(f.integer(0..=i64::from(u32::MAX - 1))?.to_string()),
        Kind::String(_) => {
            let text = f.string()?;
            if text.is_empty() {
                return Err(f.error("the name is empty"));
            }
            Ok(text.to_owned())
        }
        _ => Err(f.expected("a name or a number")),
    }
}

/// `umask = "027"`: octal, as a string.
pub(super) fn umask(f: &Field<'_>) -> Result<u32> {
    let text = f.string()?;
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|&m| {
            m <= 0o777 && !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b))
        })
        .ok_or_else(|| {
            f.error(format!(
                "invalid umask {text:?}: write it in octal as a string, e.g. \"022\" or \"077\""
            ))
        })
}

/// `rlimits = { nofile = 65536, core = 0, as = "4GiB", stack = { soft = "8MiB", hard =
/// "unlimited" } }`.
pub(super) fn rlimits(f: &Field<'_>) -> Result<Vec<Rlimit>> {
    let table = f.table()?;
    let keys: Vec<&str> = RlimitKind::ALL.iter().map(|(_, key)| *key).collect();
    table.allow(&keys)?;
    let euid = tend_os::users::effective_uid();
    let mut limits = Vec::new();
    for (key, value) in table.entries() {
        let kind = RlimitKind::ALL
            .iter()
            .find(|(_, k)| *k == key.name)
            .map(|(kind, _)| *kind)
            .expect("allowed above");
        let (soft, hard) = match &value.node.kind {
            Kind::Table(_) => {
                let both = value.table()?;
                both.allow(&["soft", "hard"])?;
                let get = |which: &str| both.get(which).map(|f| amount(&f, kind)).transpose();
                match (get("soft")?, get("hard")?) {
                    (Some(soft), Some(hard)) => (soft, hard),
                    _ => {
                        return Err(value.error(
                            "give both soft and hard, or one value for both (nofile = 65536)",
                        ))
                    }
                }
            }
            _ => {
                let both = amount(&value, kind)?;
                (both, both)
            }
        };
        if soft > hard {
            return Err(value.error(format!(
                "the soft limit {} is above the hard limit {}; the soft one may only be lower",
                show(soft),
                show(hard)
            )));
        }
        if kind == RlimitKind::Nofile {
            if let Some(why) = nr_open().and_then(|most| nofile_refusal(soft, hard, most)) {
                return Err(value.error(why));
            }
        }
        if euid != 0 {
            let current = tend_os::current_limit(os_resource(kind)).map(|(_, hard)| hard);
            if let Some(own) = current.filter(|&own| hard > own) {
                return Err(value.error(format!(
                    "the hard limit {} is above tend's own ({}), and only root may raise one; \
                     lower it or run tend as root",
                    show(hard),
                    show(own)
                )));
            }
        }
        limits.push(Rlimit { kind, soft, hard });
    }
    Ok(limits)
}

/// The most open files Linux lets a process have (`/proc/sys/fs/nr_open`): `setrlimit`
/// refuses an `RLIMIT_NOFILE` above it (unlimited included) with EPERM, even to root. `None`
/// when it cannot be read (the kernel then says so at spawn).
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why `nofile` limits of `soft` and `hard` cannot be set where a process may have at most
/// `nr_open` open files, if they cannot: every spawn would fail.
fn nofile_refusal(soft: u64, hard: u64, nr_open: u64) -> Option<String> {
    let top = soft.max(hard);
    let over = if top == Rlimit::UNLIMITED {
        "\"unlimited\" cannot be set".to_owned()
    } else if top > nr_open {
        format!("the limit {top} is too high")
    } else {
        return None;
    };
    Some(format!(
        "{over}: Linux allows a process at most {nr_open} open files (/proc/sys/fs/nr_open), \
         even to root, so every spawn would fail; use {nr_open} or less"
    ))
}

/// One limit's value: an integer, "unlimited", or for a limit in bytes a size ("512MiB").
fn amount(f: &Field<'_>, kind: RlimitKind) -> Result<u64> {
    match &f.node.kind {
        Kind::String(text) if text == "unlimited" || text == "infinity" => Ok(Rlimit::UNLIMITED),
        Kind::String(_) if kind.is_bytes() => f.size(),
        Kind::Integer(_) => f.size(),
        _ => Err(f.expected(if kind.is_bytes() {
            "a number, a size such as \"512MiB\", or \"unlimited\""
        } else {
            "a number or \"unlimited\""
        })),
    }
}

fn show(limit: u64) -> String {
    if limit == Rlimit::UNLIMITED {
        "unlimited".to_owned()
    } else {
        limit.to_string()
    }
}

/// `nice = 10`: -20 (most favoured) to 19; lowering it below tend's own needs root, or an
/// `RLIMIT_NICE` that allows it (`20 - limit` is the lowest it allows).
pub(super) fn nice(f: &Field<'_>) -> Result<i32> {
    let n = i32::try_from(f.integer(-20..=19)?).expect("in range");
    if has_capability(CAP_SYS_NICE) {
        return Ok(n);
    }
    let own = tend_os::procfs::stat(std::process::id() as tend_os::Pid).map_or(0, |s| s.nice);
    let by_limit = tend_os::current_limit(tend_os::Resource::RLIMIT_NICE)
        .map_or(20, |(soft, _)| {
            20 - i64::try_from(soft.min(40)).unwrap_or(40)
        });
    let lowest = i64::from(own).min(by_limit).max(-20);
    if i64::from(n) < lowest {
        return Err(f.error(format!(
            "nice {n} is below tend's own ({own}), which needs CAP_SYS_NICE, which tend lacks \
             (root has it, unless its container drops it), or an RLIMIT_NICE that allows it; \
             use {lowest} to 19"
        )));
    }
    Ok(n)
}

/// `oom_score_adj = 500`: -1000 (never killed) to 1000 (killed first); a negative value
/// needs CAP_SYS_RESOURCE.
pub(super) fn oom_score_adj(f: &Field<'_>) -> Result<i32> {
    let n = i32::try_from(f.integer(-1000..=1000)?).expect("in range");
    if n < 0 && !has_capability(CAP_SYS_RESOURCE) {
        return Err(f.error(
            "a negative oom_score_adj needs CAP_SYS_RESOURCE, which tend lacks (root has it, \
             unless its container drops it); use 0 to 1000",
        ));
    }
    Ok(n)
}

/// `CAP_SYS_NICE`: lowering a nice value.
const CAP_SYS_NICE: u32 = 23;
/// `CAP_SYS_RESOURCE`: a negative `oom_score_adj`, among others.
const CAP_SYS_RESOURCE: u32 = 24;

/// Whether tend has capability `bit` in its effective set (`CapEff` of `/proc/self/status`),
/// as the kernel checks it: root in a container may lack one, and a non-root tend may have
/// one (systemd's `AmbientCapabilities=`).
fn has_capability(bit: u32) -> bool {
    own_status("CapEff")
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|set| set >> bit & 1 == 1)
}

/// The `setrlimit` resource of a limit.
pub fn os_resource(kind: RlimitKind) -> tend_os::Resource {
    use tend_os::Resource as R;
    match kind {
        RlimitKind::As => R::RLIMIT_AS,
        RlimitKind::Core => R::RLIMIT_CORE,
        RlimitKind::Cpu => R::RLIMIT_CPU,
        RlimitKind::Data => R::RLIMIT_DATA,
        RlimitKind::Fsize => R::RLIMIT_FSIZE,
        RlimitKind::Memlock => R::RLIMIT_MEMLOCK,
        RlimitKind::Msgqueue => R::RLIMIT_MSGQUEUE,
        RlimitKind::Nofile => R::RLIMIT_NOFILE,
        RlimitKind::Nproc => R::RLIMIT_NPROC,
        RlimitKind::Stack => R::RLIMIT_STACK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nofile_above_nr_open_is_refused_and_says_what_linux_allows() {
        let most = 1_048_576;
        assert_eq!(nofile_refusal(1024, 4096, most), None);
        assert_eq!(nofile_refusal(most, most, most), None);
        for (soft, hard, says) in [
            (
                Rlimit::UNLIMITED,
                Rlimit::UNLIMITED,
                "\"unlimited\" cannot be set",
            ),
            (1024, Rlimit::UNLIMITED, "\"unlimited\" cannot be set"),
            (1024, most + 1, "the limit 1048577 is too high"),
            (most + 1, most + 1, "the limit 1048577 is too high"),
            (most + 1, most, "the limit 1048577 is too high"),
        ] {
            let why = nofile_refusal(soft, hard, most).expect("refused");
            assert!(why.starts_with(says), "{soft} {hard}: {why}");
            assert!(
                why.ends_with(
                    "Linux allows a process at most 1048576 open files \
                     (/proc/sys/fs/nr_open), even to root, so every spawn would fail; use \
                     1048576 or less"
                ),
                "{why}"
            );
        }
    }
}
