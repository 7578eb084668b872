//! Users and groups from the system's databases (`getpwnam_r`, `getgrnam_r`,
//! `getgrouplist`), for processes that run as another user.
//!
//! Lookups go through glibc's NSS, as `su`, `login` and systemd do, so users from LDAP or
//! systemd's dynamic users are found too. They are made before any spawn, never in a child.

use std::ffi::{CStr, CString};
use std::io;
use std::path::PathBuf;

/// A user of the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The home directory.
    pub home: PathBuf,
    /// The login shell.
    pub shell: PathBuf,
}

/// A group of the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// The group id.
    pub gid: u32,
}

/// The largest buffer a lookup grows to: NSS answers (a group with thousands of members)
/// can be large, but not this large.
const MAX_BUFFER: usize = 1 << 20;

/// The user named `name`, if there is one. An all-digit `name` is taken as a uid (as
/// `chown` does) when no user has that name.
pub fn user_by_name(name: &str) -> io::Result<Option<User>> {
    let Ok(c_name) = CString::new(name) else {
        return Ok(None);
    };
    let found = lookup_user(|pwd, buf, len, result| {
        // SAFETY: every pointer is valid for the call; `buf` has `len` bytes.
        unsafe { libc::getpwnam_r(c_name.as_ptr(), pwd, buf, len, result) }
    })?;
    match (found, name.parse::<u32>()) {
        (Some(user), _) => Ok(Some(user)),
        (None, Ok(uid)) => user_by_uid(uid),
        (None, Err(_)) => Ok(None),
    }
}

/// The user whose id is `uid`, if there is one.
pub fn user_by_uid(uid: u32) -> io::Result<Option<User>> {
    lookup_user(|pwd, buf, len, result| {
        // SAFETY: every pointer is valid for the call; `buf` has `len` bytes.
        unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) }
    })
}

/// The group named `name`, if there is one; an all-digit `name` is taken as a gid when no
/// group has that name (and then it need not exist in the database).
pub fn group_by_name(name: &str) -> io::Result<Option<Group>> {
    let Ok(c_name) = CString::new(name) else {
        return Ok(None);
    };
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: a zeroed `group` is a valid out-parameter.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` has `buf.len()` bytes.
        let rc = unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < MAX_BUFFER {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(name.parse::<u32>().ok().map(|gid| Group {
                name: name.to_owned(),
                gid,
            }));
        }
        // SAFETY: on success gr_name points to a NUL-terminated string in `buf`.
        let group_name = unsafe { CStr::from_ptr(grp.gr_name) };
        return Ok(Some(Group {
            name: group_name.to_string_lossy().into_owned(),
            gid: grp.gr_gid,
        }));
    }
}

/// The groups of `user`: its primary group `gid` first, then every group that lists it as a
/// member (what `initgroups` would set).
pub fn group_list(user: &str, gid: u32) -> io::Result<Vec<u32>> {
    let c_name = CString::new(user).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut count = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `groups` has room for `count` gids; getgrouplist writes at most that many
        // and sets `count` to the number there are.
        let rc =
            unsafe { libc::getgrouplist(c_name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        let count = usize::try_from(count).unwrap_or(0);
        if rc >= 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        if count <= groups.len() || count > 65_536 {
            return Err(io::Error::other(format!(
                "the groups of {user} cannot be listed ({count} of them)"
            )));
        }
        groups.resize(count, 0);
    }
}

/// tend's own effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// One `getpw*_r` lookup, its buffer grown until the answer fits.
fn lookup_user(
    call: impl Fn(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int,
) -> io::Result<Option<User>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: a zeroed `passwd` is a valid out-parameter.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result);
        if rc == libc::ERANGE && buf.len() < MAX_BUFFER {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(None);
        }
        let text = |p: *const libc::c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: on success each field points to a NUL-terminated string in `buf`.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        return Ok(Some(User {
            name: text(pwd.pw_name),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home: PathBuf::from(text(pwd.pw_dir)),
            shell: PathBuf::from(text(pwd.pw_shell)),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_root_by_name_and_by_id() {
        let root = user_by_name("root")
            .unwrap()
            .expect("every system has root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(user_by_uid(0).unwrap(), Some(root.clone()));
        assert_eq!(user_by_name("0").unwrap(), Some(root));
        assert_eq!(user_by_name("no-such-user-of-tend").unwrap(), None);
        assert_eq!(user_by_name("a\0b").unwrap(), None);
    }

    #[test]
    fn finds_groups_and_lists_a_users_groups() {
        assert_eq!(group_by_name("root").unwrap().unwrap().gid, 0);
        assert_eq!(
            group_by_name("4242").unwrap(),
            Some(Group {
                name: "4242".into(),
                gid: 4242
            })
        );
        assert_eq!(group_by_name("no-such-group-of-tend").unwrap(), None);
        let list = group_list("root", 0).unwrap();
        assert_eq!(list.first(), Some(&0));
    }
}
