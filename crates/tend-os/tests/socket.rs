//! Contract tests of the control socket: binding over a live, a stale and a foreign file, its
//! mode, path length, and the peer's uid.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use tend_os::{bind_listener, current_uid, peer_uid};

/// Connects to `path` and checks that `listener` accepts and hears us.
fn assert_serves(listener: &std::os::unix::net::UnixListener, path: &Path) {
    let mut client = UnixStream::connect(path).expect("connect");
    client.write_all(b"hello").unwrap();
    drop(client);
    let (mut server, _) = listener.accept().expect("accept");
    let mut text = String::new();
    server.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello");
}

#[test]
fn second_bind_while_the_first_listens_is_eaddrinuse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.sock");
    let first = bind_listener(&path).expect("bind");
    let err = bind_listener(&path).expect_err("a live server owns the path");
    assert_eq!(err.op, "bind");
    assert_eq!(err.path.as_deref(), Some(path.as_path()));
    assert_eq!(err.errno(), Some(libc::EADDRINUSE));
    // The check connected once; the first server is undisturbed (it sees an empty connection).
    let (mut probe, _) = first.accept().expect("the check's connection");
    assert_eq!(probe.read(&mut [0; 8]).unwrap(), 0);
    assert_serves(&first, &path);
}

#[test]
fn stale_socket_of_a_dead_server_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.sock");
    // Dropping a listener leaves its file, as a SIGKILL would.
    drop(bind_listener(&path).expect("bind"));
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());

    let listener = bind_listener(&path).expect("bind over the stale socket");
    assert_serves(&listener, &path);
}

#[test]
fn regular_file_at_the_path_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.sock");
    fs::write(&path, "not a socket").unwrap();
    let listener = bind_listener(&path).expect("bind over a file");
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());
    assert_serves(&listener, &path);
}

#[test]
fn socket_mode_is_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.sock");
    let _listener = bind_listener(&path).expect("bind");
    let mode = fs::symlink_metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
}

/// A path of exactly `len` bytes inside `dir`.
fn path_of_len(dir: &Path, len: usize) -> PathBuf {
    let prefix = dir.as_os_str().len() + 1;
    assert!(prefix < len, "temp dir path too long for this test");
    dir.join("s".repeat(len - prefix))
}

#[test]
fn path_of_108_bytes_or_more_is_too_long_and_107_fits() {
    let dir = tempfile::tempdir().unwrap();
    for len in [108, 120] {
        let path = path_of_len(dir.path(), len);
        let err = bind_listener(&path).expect_err("too long");
        assert_eq!(err.op, "bind");
        assert_eq!(err.path.as_deref(), Some(path.as_path()));
        assert_eq!(err.source.kind(), std::io::ErrorKind::InvalidInput);
        let text = err.to_string();
        assert!(text.contains(path.to_str().unwrap()), "{text}");
        assert!(text.contains(&format!("is {len} bytes long")), "{text}");
    }
    let path = path_of_len(dir.path(), 107);
    let listener = bind_listener(&path).expect("107 bytes fit");
    assert_serves(&listener, &path);
}

#[test]
fn missing_parent_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("tend.sock");
    let err = bind_listener(&path).expect_err("no parent");
    assert_eq!(err.op, "bind");
    assert_eq!(err.errno(), Some(libc::ENOENT));
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn peer_uid_is_ours_on_a_pair_and_on_an_accepted_connection() {
    let (a, b) = UnixStream::pair().unwrap();
    assert_eq!(peer_uid(&a).unwrap(), current_uid());
    assert_eq!(peer_uid(&b).unwrap(), current_uid());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.sock");
    let listener = bind_listener(&path).expect("bind");
    let client = UnixStream::connect(&path).unwrap();
    let (server, _) = listener.accept().unwrap();
    assert_eq!(peer_uid(&server).unwrap(), current_uid());
    assert_eq!(peer_uid(&client).unwrap(), current_uid());
}

#[test]
fn peer_uid_of_a_file_is_enotsock() {
    let file = tempfile::tempfile().unwrap();
    let err = peer_uid(&file).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOTSOCK));
}
