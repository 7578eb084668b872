//! One function per client verb: the request it sends, the answer it expects, and what it
//! prints on stdout. Failures go back to [`super::run_with`], which reports them.

use std::io::Write;
use std::path::Path;

use tend_proto::{
    encode, Answer, InstanceStatus, LogsArgs, NoArgs, OkBody, Request, SignalArgs, StatusArgs,
    TargetArgs,
};

use super::conn::Connection;
use super::{error_failure, render, stdout_failure, ClientVerb, Failure};

/// Runs `verb` against the supervisor of `config` at `socket`, printing to `out`.
pub fn run(
    verb: ClientVerb,
    config: &Path,
    socket: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
    colour: bool,
) -> Result<(), Failure> {
    let mut conn = Connection::open(config, socket)?;
    match verb {
        ClientVerb::Status { json, names } => status(&mut conn, config, json, names, out),
        ClientVerb::Start {
            names,
            wait,
            no_deps,
        } => targets(
            &mut conn,
            "start",
            Request::Start(TargetArgs {
                names,
                wait,
                no_deps,
                progress: wait,
            }),
            out,
            err,
        ),
        ClientVerb::Stop { names, wait } => targets(
            &mut conn,
            "stop",
            Request::Stop(TargetArgs {
                names,
                wait,
                no_deps: false,
                progress: false,
            }),
            out,
            err,
        ),
        ClientVerb::Restart { names, wait } => targets(
            &mut conn,
            "restart",
            Request::Restart(TargetArgs {
                names,
                wait,
                no_deps: false,
                progress: wait,
            }),
            out,
            err,
        ),
        ClientVerb::Signal { signal, names } => signal_verb(&mut conn, signal, names, out),
        ClientVerb::Logs {
            follow,
            lines,
            since,
            names,
            view,
        } => logs(
            &mut conn,
            LogsArgs {
                names,
                lines,
                follow,
                since_ms: since.map(|since| since.unix_ms(std::time::SystemTime::now())),
            },
            out,
            colour,
            view,
        ),
        ClientVerb::Events { json, names } => events(&mut conn, json, names, out),
        ClientVerb::Reload { dry_run } => reload(&mut conn, dry_run, out),
        ClientVerb::Scale { counts } => scale(&mut conn, counts, out),
        ClientVerb::Down => down(&mut conn, out),
    }
}

/// Writes one line to stdout.
fn say(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    writeln!(out, "{text}").map_err(stdout_failure)
}

/// `status`: the table, or with `json` the `instances` array as one compact JSON document
/// followed by a newline (the stable format of docs/protocol.md, `[]` when there are none).
fn status(
    conn: &mut Connection,
    config: &Path,
    json: bool,
    names: Vec<String>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let id = conn.send(Request::Status(StatusArgs { names }))?;
    let answer = match conn.ok(id)? {
        OkBody::Instances(answer) => answer,
        other => return Err(wrong_body(conn, "status", &other)),
    };
    let instances = answer.instances;
    if json {
        return out.write_all(&encode(&instances)).map_err(stdout_failure);
    }
    if let Some(hello) = conn.hello() {
        let now_ms = tend_core::time::unix_millis(std::time::SystemTime::now());
        out.write_all(render::status_header(hello, now_ms).as_bytes())
            .map_err(stdout_failure)?;
    }
    if instances.is_empty() && answer.no_instances.is_empty() {
        return say(out, &format!("no processes in {}", config.display()));
    }
    if !instances.is_empty() {
        out.write_all(render::status_table(&instances).as_bytes())
            .map_err(stdout_failure)?;
    }
    // Processes scaled to 0 have no row: one line each under the table.
    for process in &answer.no_instances {
        say(out, &format!("{process}: no instances (scaled to 0)"))?;
    }
    Ok(())
}

/// `start`, `stop`, `restart`: one line per instance, such as `web.0 running (pid 1234)`.
/// While a `start` or `restart` waits, what happens to its instances is shown on stderr (see
/// [`super::progress`]).
fn targets(
    conn: &mut Connection,
    verb: &str,
    request: Request,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Failure> {
    let named = match &request {
        Request::Start(args) | Request::Stop(args) | Request::Restart(args) => args.names.clone(),
        _ => Vec::new(),
    };
    let id = conn.send(request)?;
    let mut progress = super::progress::Progress::new();
    let instances = loop {
        match conn.next(id)? {
            Some(Answer::Event(event)) => {
                progress.event(&crate::daemon::events::render(&event), err)
            }
            Some(Answer::Ok(OkBody::Instances(instances))) => break instances.instances,
            Some(Answer::Ok(other)) => return Err(wrong_body(conn, verb, &other)),
            Some(Answer::Error(error)) => return Err(error_failure(error)),
            Some(Answer::Log(_)) => {
                return Err(conn.failure(format!(
                    "the supervisor sent log lines in answer to {verb}, which asked for none"
                )))
            }
            None => return Err(conn.closed_early()),
        }
    };
    drop(progress);
    for instance in &instances {
        say(out, &render::instance_line(instance))?;
    }
    for process in without_instances(&named, &instances) {
        say(out, &render::no_instances(verb, process))?;
    }
    Ok(())
}

/// The processes among `names` (not instances, not `all`) that have no instance in the
/// answer: the supervisor knew them (else it would have answered `unknown_name`), so they
/// are scaled to 0.
fn without_instances<'a>(names: &'a [String], instances: &[InstanceStatus]) -> Vec<&'a str> {
    let mut found: Vec<&str> = Vec::new();
    for name in names {
        let process = name != "all" && !name.contains('.');
        if process
            && !found.contains(&name.as_str())
            && !instances.iter().any(|i| i.process == *name)
        {
            found.push(name);
        }
    }
    found
}

/// `events`: each event as it happens, as a line (`time  text`) or a JSON object, until the
/// supervisor exits (or the user interrupts).
fn events(
    conn: &mut Connection,
    json: bool,
    names: Vec<String>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let id = conn.send(Request::Events(StatusArgs { names }))?;
    loop {
        match conn.next(id)? {
            Some(Answer::Event(event)) if json => {
                let line = String::from_utf8_lossy(&encode(&event)).into_owned();
                say(out, line.trim_end())?;
            }
            Some(Answer::Event(event)) => say(
                out,
                &format!("{}  {}", event.time, crate::daemon::events::render(&event)),
            )?,
            Some(Answer::Error(error)) => return Err(error_failure(error)),
            Some(Answer::Ok(_) | Answer::Log(_)) => {}
            None => return Ok(()),
        }
        out.flush().map_err(stdout_failure)?;
    }
}

/// `signal`: `sent SIGUSR1 to web.0, web.1`.
fn signal_verb(
    conn: &mut Connection,
    signal: String,
    names: Vec<String>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let id = conn.send(Request::Signal(SignalArgs {
        signal: signal.clone(),
        names,
    }))?;
    match conn.ok(id)? {
        OkBody::Signalled(signalled) => {
            say(out, &render::signal_summary(&signal, &signalled.signalled))
        }
        other => Err(wrong_body(conn, "signal", &other)),
    }
}

/// `logs`: each line as `web.0 | text` (after its time with `--timestamps`) until the
/// terminal `ok`, or with `follow` until the supervisor closes the connection (or the user
/// interrupts). The supervisor sends them in the order they were read.
fn logs(
    conn: &mut Connection,
    args: LogsArgs,
    out: &mut dyn Write,
    colour: bool,
    view: super::LogsView,
) -> Result<(), Failure> {
    let follow = args.follow;
    let console = crate::style::stdout_is_terminal();
    let id = conn.send(Request::Logs(args))?;
    loop {
        match conn.next(id)? {
            Some(Answer::Log(line)) if view.only.is_some_and(|s| s != line.stream) => {}
            Some(Answer::Log(line)) if view.json => {
                let json = String::from_utf8_lossy(&tend_proto::encode(&line)).into_owned();
                say(out, json.trim_end())?
            }
            Some(Answer::Log(line)) => {
                let text = if view.prefix {
                    render::log_line(&line, colour, console)
                } else {
                    let text = render::log_line(&line, false, console);
                    text.strip_prefix(&format!("{} | ", line.instance))
                        .map(str::to_owned)
                        .unwrap_or(text)
                };
                if view.timestamps {
                    say(out, &format!("{} {text}", render::log_time(&line)))?
                } else {
                    say(out, &text)?
                }
            }
            Some(Answer::Ok(_)) => return Ok(()),
            Some(Answer::Event(_)) => {}
            Some(Answer::Error(error)) => return Err(error_failure(error)),
            None if follow => return Ok(()),
            None => return Err(conn.closed_early()),
        }
    }
}

/// `reload`: `reloaded: 1 added (db), 1 changed (web), 0 removed, 2 unchanged`, then the
/// plan, process by process (with `dry_run`, the plan only: nothing changes).
fn reload(conn: &mut Connection, dry_run: bool, out: &mut dyn Write) -> Result<(), Failure> {
    let id = conn.send(Request::Reload(tend_proto::ReloadArgs { dry_run }))?;
    match conn.ok(id)? {
        OkBody::Reloaded(reloaded) => say(out, &render::reload_plan(&reloaded)),
        other => Err(wrong_body(conn, "reload", &other)),
    }
}

/// `scale`: `web: 2 → 4 instances`, and that it lasts until the next reload.
fn scale(
    conn: &mut Connection,
    counts: Vec<(String, u32)>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let replicas = counts.into_iter().collect();
    let id = conn.send(Request::Scale(tend_proto::ScaleArgs { replicas }))?;
    match conn.ok(id)? {
        OkBody::Scaled(scaled) => say(out, &render::scale_summary(&scaled)),
        other => Err(wrong_body(conn, "scale", &other)),
    }
}

/// `down`: waits for the `ok` (everything has stopped), then for the supervisor to close the
/// connection as it exits, so that the command returns only once it is gone.
fn down(conn: &mut Connection, out: &mut dyn Write) -> Result<(), Failure> {
    let id = conn.send(Request::Down(NoArgs {}))?;
    conn.ok(id)?;
    conn.wait_closed();
    say(out, "tend stopped")
}

/// The failure for an `ok` whose payload is not the one the request gets.
fn wrong_body(conn: &Connection, what: &str, body: &OkBody) -> Failure {
    conn.failure(format!(
        "the supervisor's answer to {what} is not the expected one: {}",
        String::from_utf8_lossy(&encode(body)).trim_end()
    ))
}
