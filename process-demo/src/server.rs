//! Exercise 2 (练习 2): a web server that shuts down gracefully. On SIGTERM or SIGINT it stops
//! accepting connections (its listening socket is closed: new ones are refused), lets the
//! requests in flight finish, and exits 0. `/slow` takes a few seconds to answer, to have a
//! request in flight when the signal comes.
//!
//! axum's `with_graceful_shutdown` does the stopping; tokio's signal streams do the intake. Both
//! streams are registered before the address is printed, so a signal sent as soon as the server
//! says it listens is already caught.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal as SignalStream, SignalKind};

/// Runs the server on `addr` until SIGTERM or SIGINT, on a single-threaded runtime (tend's own
/// driver runs on one too).
pub fn run(addr: SocketAddr, slow: Duration) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(serve(addr, slow))
}

async fn serve(addr: SocketAddr, slow: Duration) -> anyhow::Result<()> {
    println!("== Exercise 2: graceful shutdown of a web server (练习 2: 优雅关闭) ==");
    let term = signal(SignalKind::terminate()).context("catching SIGTERM")?;
    let int = signal(SignalKind::interrupt()).context("catching SIGINT")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let requests = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/", get(|| async { "hello from process-demo\n" }))
        .route(
            "/slow",
            get(move || slow_answer(slow, Arc::clone(&requests))),
        );
    println!("Listening on http://{local}");
    println!(
        "Try: curl http://{local}/ and curl http://{local}/slow (answers after {} s)",
        slow.as_secs()
    );
    println!(
        "Stop with Ctrl+C or kill {}: requests in flight finish, new connections are refused.",
        std::process::id()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal(term, int))
        .await
        .context("serving")?;
    println!("All requests in flight have finished; exiting.");
    Ok(())
}

/// The `/slow` handler: answers after `slow`.
async fn slow_answer(slow: Duration, requests: Arc<AtomicU64>) -> String {
    let n = requests.fetch_add(1, Ordering::Relaxed) + 1;
    println!("/slow #{n}: started, answering in {} s", slow.as_secs());
    tokio::time::sleep(slow).await;
    println!("/slow #{n}: done");
    format!("slow answer #{n}, after {} s\n", slow.as_secs())
}

/// How long requests in flight may take to finish after the first signal.
const GRACE: Duration = Duration::from_secs(10);

/// Completes on the first SIGTERM or SIGINT, which starts the graceful shutdown. A second
/// signal, or [`GRACE`] passing with requests still in flight, ends the process at once: a
/// graceful stop must still end.
async fn shutdown_signal(mut term: SignalStream, mut int: SignalStream) {
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    println!(
        "Received {name}: no longer accepting connections; waiting up to {} s for requests in \
         flight (Ctrl+C again to quit now)...",
        GRACE.as_secs()
    );
    tokio::spawn(async move {
        let why = tokio::select! {
            _ = term.recv() => "A second SIGTERM",
            _ = int.recv() => "A second SIGINT",
            () = tokio::time::sleep(GRACE) => "The grace period is over",
        };
        println!("{why}: exiting with requests still in flight.");
        std::process::exit(1);
    });
}
