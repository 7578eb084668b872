//! Table tests: (policy, exit status) → what happens next.

mod common;

use common::*;
use tend_core::*;

#[test]
fn restart_policy_and_success_codes() {
    use ExitStatus::*;
    let table = [
        // (policy, success codes, exit, next state)
        (RestartPolicy::Always, vec![0], Code(0), State::Backoff),
        (RestartPolicy::Always, vec![0], Code(1), State::Backoff),
        (RestartPolicy::Always, vec![0], Signaled(9), State::Backoff),
        (RestartPolicy::OnFailure, vec![0], Code(0), State::Exited),
        (RestartPolicy::OnFailure, vec![0], Code(1), State::Backoff),
        (RestartPolicy::OnFailure, vec![0, 3], Code(3), State::Exited),
        (RestartPolicy::OnFailure, vec![3], Code(0), State::Backoff),
        (
            RestartPolicy::OnFailure,
            vec![0],
            Signaled(15),
            State::Backoff,
        ),
        (RestartPolicy::Never, vec![0], Code(0), State::Exited),
        (RestartPolicy::Never, vec![0], Code(1), State::Exited),
        (RestartPolicy::Never, vec![0], Signaled(11), State::Exited),
    ];
    for (policy, codes, exit, expected) in table {
        let mut p = proc("p");
        p.restart = policy;
        p.success_codes = codes.clone();
        let mut h = Harness::new(vec![p]);
        let runs = h.up();
        let e = h.feed(Input::Exited {
            group_left: false,
            run: runs[0],
            status: exit,
        });
        assert_eq!(
            h.state(0, 0),
            expected,
            "{policy:?} {codes:?} {exit:?}: {e:?}"
        );
        let view = h
            .sup
            .instance(InstanceId {
                process: 0,
                replica: 0,
            })
            .unwrap();
        assert_eq!(view.last_exit, Some(&Ok(exit)));
    }
}

#[test]
fn requests_in_each_state() {
    // (setup, request, resulting state, spawns, signals)
    #[derive(Debug, Clone, Copy)]
    enum Setup {
        Stopped,
        Running,
        Backoff,
        Stopping,
        Exited,
    }
    let table = [
        (
            Setup::Stopped,
            Input::StartRequested(Target::All),
            State::Starting,
            1,
            0,
        ),
        (
            Setup::Stopped,
            Input::StopRequested(Target::All),
            State::Stopped,
            0,
            0,
        ),
        (
            Setup::Stopped,
            Input::RestartRequested(Target::All),
            State::Starting,
            1,
            0,
        ),
        (
            Setup::Running,
            Input::StartRequested(Target::All),
            State::Running,
            0,
            0,
        ),
        (
            Setup::Running,
            Input::StopRequested(Target::All),
            State::Stopping,
            0,
            1,
        ),
        (
            Setup::Running,
            Input::RestartRequested(Target::All),
            State::Stopping,
            0,
            1,
        ),
        (
            Setup::Backoff,
            Input::StartRequested(Target::All),
            State::Starting,
            1,
            0,
        ),
        (
            Setup::Backoff,
            Input::StopRequested(Target::All),
            State::Stopped,
            0,
            0,
        ),
        (
            Setup::Stopping,
            Input::StopRequested(Target::All),
            State::Stopping,
            0,
            0,
        ),
        (
            Setup::Stopping,
            Input::StartRequested(Target::All),
            State::Stopping,
            0,
            0,
        ),
        (
            Setup::Exited,
            Input::StartRequested(Target::All),
            State::Starting,
            1,
            0,
        ),
        (
            Setup::Exited,
            Input::StopRequested(Target::All),
            State::Exited,
            0,
            0,
        ),
    ];
    for (setup, request, expected, n_spawns, n_signals) in table {
        let mut p = proc("p");
        p.start_secs = ms(0);
        if matches!(setup, Setup::Exited) {
            p.restart = RestartPolicy::Never;
        }
        let mut h = Harness::new(vec![p]);
        if !matches!(setup, Setup::Stopped) {
            let runs = h.up();
            match setup {
                Setup::Backoff | Setup::Exited => {
                    h.feed(Input::Exited {
                        group_left: false,
                        run: runs[0],
                        status: ExitStatus::Code(1),
                    });
                }
                Setup::Stopping => {
                    h.feed(Input::StopRequested(Target::All));
                }
                _ => {}
            }
        }
        let label = format!("{setup:?} + {request:?}");
        let e = h.feed(request);
        assert_eq!(h.state(0, 0), expected, "{label}: {e:?}");
        assert_eq!(spawns(&e).len(), n_spawns, "{label}: {e:?}");
        assert_eq!(signals(&e).len(), n_signals, "{label}: {e:?}");
    }
}

#[test]
fn stop_during_restart_wins() {
    let mut h = Harness::new(vec![proc("p")]);
    let runs = h.up();
    h.feed(Input::RestartRequested(Target::All));
    h.feed(Input::StopRequested(Target::All));
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Signaled(15),
    });
    assert!(spawns(&e).is_empty(), "{e:?}");
    assert_eq!(h.state(0, 0), State::Stopped);
}
