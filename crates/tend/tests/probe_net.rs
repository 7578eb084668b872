//! tcp and http probes against real servers on the loopback: small ones written here, and
//! `python3 -m http.server` when python3 is installed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tend::daemon::probe::{try_once, ProbeChildren, ProbeContext};
use tend_core::Probe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

fn ctx() -> ProbeContext {
    ProbeContext {
        cwd: None,
        env: Vec::new(),
        children: ProbeChildren::new(),
        runs_as: None,
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn tcp_succeeds_against_a_listener_and_names_the_refusal_of_a_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let probe = Probe::Tcp(format!("127.0.0.1:{port}"));
    assert_eq!(try_once(&probe, SECOND, &ctx()).await, Ok(()));
    // A name that resolves to ::1 and 127.0.0.1: the listener is on one of them.
    let probe = Probe::Tcp(format!("localhost:{port}"));
    assert_eq!(try_once(&probe, SECOND, &ctx()).await, Ok(()));

    drop(listener);
    let probe = Probe::Tcp(format!("127.0.0.1:{port}"));
    assert_eq!(
        try_once(&probe, SECOND, &ctx()).await,
        Err("connection refused".to_owned())
    );
}

#[tokio::test]
async fn tcp_reaches_an_ipv6_loopback_listener() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    let port = listener.local_addr().expect("addr").port();
    let probe = Probe::Tcp(format!("[::1]:{port}"));
    assert_eq!(try_once(&probe, SECOND, &ctx()).await, Ok(()));
}

/// What a test server does with each connection.
#[derive(Clone, Copy)]
enum Answer {
    /// Reads the request, then writes these bytes and closes.
    With(&'static [u8]),
    /// Reads the request and never answers (holds the connection until the test ends).
    Never,
    /// Reads the request and closes without a word.
    Close,
}

/// A server on 127.0.0.1 that answers every connection the same way; returns its port and
/// the requests it read (as far as the empty line), in order.
async fn serve(answer: Answer) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (requests, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            // The request, bounded: up to the empty line or 8 KiB.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") && request.len() < 8192 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = requests.send(String::from_utf8_lossy(&request).into_owned());
            match answer {
                Answer::With(bytes) => {
                    let _ = stream.write_all(bytes).await;
                }
                Answer::Never => held.push(stream),
                Answer::Close => {}
            }
        }
    });
    (port, received)
}

#[tokio::test]
async fn http_sends_a_minimal_get_and_takes_2xx_for_success() {
    let (port, mut requests) = serve(Answer::With(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ))
    .await;
    let probe = Probe::Http(format!("http://127.0.0.1:{port}/health?full=1#frag"));
    assert_eq!(try_once(&probe, SECOND, &ctx()).await, Ok(()));
    assert_eq!(
        requests.recv().await.expect("a request"),
        format!(
            "GET /health?full=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
             User-Agent: tend\r\n\r\n"
        )
    );

    // Interim answers are skipped; any 2xx is success.
    let (port, _) = serve(Answer::With(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    ))
    .await;
    let probe = Probe::Http(format!("http://127.0.0.1:{port}"));
    assert_eq!(try_once(&probe, SECOND, &ctx()).await, Ok(()));
}

#[tokio::test]
async fn http_failures_say_why() {
    let cases: [(Answer, &str); 5] = [
        (
            Answer::With(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            "HTTP 503",
        ),
        (
            Answer::With(b"HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n"),
            "HTTP 302",
        ),
        (Answer::With(b"SSH-2.0-OpenSSH_9.2\r\n"), "no HTTP answer"),
        (Answer::With(b"HTTP/1.1 20"), "no HTTP answer: cut short"),
        (Answer::Close, "no answer: connection closed"),
    ];
    for (answer, reason) in cases {
        let (port, _) = serve(answer).await;
        let probe = Probe::Http(format!("http://127.0.0.1:{port}/"));
        assert_eq!(
            try_once(&probe, SECOND, &ctx()).await,
            Err(reason.to_owned())
        );
    }

    // Nothing listens.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let probe = Probe::Http(format!("http://127.0.0.1:{port}/"));
    assert_eq!(
        try_once(&probe, SECOND, &ctx()).await,
        Err("connection refused".to_owned())
    );

    // A URL that is not one.
    let probe = Probe::Http("https://127.0.0.1/".into());
    let err = try_once(&probe, SECOND, &ctx()).await.unwrap_err();
    assert!(err.contains("https is not supported"), "{err}");
}

#[tokio::test]
async fn http_reads_no_more_than_the_head_limit() {
    // A status line that never ends.
    static ENDLESS: [u8; 20_000] = {
        let mut bytes = [b'x'; 20_000];
        let start = b"HTTP/1.1 200 ";
        let mut i = 0;
        while i < start.len() {
            bytes[i] = start[i];
            i += 1;
        }
        bytes
    };
    let (port, _) = serve(Answer::With(&ENDLESS)).await;
    let probe = Probe::Http(format!("http://127.0.0.1:{port}/"));
    // A status counts once its line has ended, which it does not in the first 8 KiB.
    assert_eq!(
        try_once(&probe, SECOND, &ctx()).await,
        Err("no HTTP answer in the first 8192 bytes".to_owned())
    );
}

#[tokio::test]
async fn an_http_server_that_never_answers_times_out() {
    let (port, mut requests) = serve(Answer::Never).await;
    let probe = Probe::Http(format!("http://127.0.0.1:{port}/"));
    let start = Instant::now();
    let result = try_once(&probe, Duration::from_millis(200), &ctx()).await;
    let took = start.elapsed();
    assert_eq!(result, Err("timed out after 200ms".to_owned()));
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(requests.recv().await.is_some(), "the request was sent");
}

/// A child killed and reaped on drop, even when the test fails.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn python_http_server_answers_200_and_404() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("health"), "ok").expect("write");
    // Port 0: the server takes a free port and says which.
    let spawned = Command::new("python3")
        .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else {
        assert!(
            std::env::var_os("TEND_TEST_REQUIRE_TOOLS").is_none(),
            "python3 is needed, and TEND_TEST_REQUIRE_TOOLS is set"
        );
        eprintln!("skipped: python3 is not installed");
        return;
    };
    let stdout = child.stdout.take().expect("stdout");
    let _guard = ChildGuard(child);
    // "Serving HTTP on 127.0.0.1 port 43567 (http://127.0.0.1:43567/) ...", read on a thread
    // so the wait has a deadline.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .expect("join")
        .expect("python3 -m http.server said nothing within 30 s");
    let port: u16 = line
        .split(" port ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));

    let ok = Probe::Http(format!("http://127.0.0.1:{port}/health"));
    assert_eq!(try_once(&ok, Duration::from_secs(5), &ctx()).await, Ok(()));
    let missing = Probe::Http(format!("http://127.0.0.1:{port}/missing"));
    assert_eq!(
        try_once(&missing, Duration::from_secs(5), &ctx()).await,
        Err("HTTP 404".to_owned())
    );
    let tcp = Probe::Tcp(format!("127.0.0.1:{port}"));
    assert_eq!(try_once(&tcp, Duration::from_secs(5), &ctx()).await, Ok(()));
}
