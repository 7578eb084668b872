//! The terminal `tend ui` draws on: raw mode and the alternate screen while it runs, and the
//! terminal as it found it afterwards, whatever way it ends.
//!
//! - A normal end: [`Screen`]'s `Drop`.
//! - A panic on any thread: the hook installed by [`Screen::enter`] restores the terminal
//!   first, then prints the panic as usual (on the normal screen, where it stays readable),
//!   then exits with 101, the code of a Rust panic: a UI whose worker died would otherwise
//!   go on showing stale state.
//! - SIGTERM, SIGHUP, SIGINT: blocked, and taken by a thread (`feed::Feed::signals`), so the
//!   loop ends normally and `Drop` restores.
//!
//! Only SIGKILL leaves the terminal raw (`reset` or `stty sane` fixes it).

use std::io::{self, Stdout};
use std::sync::Once;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// The terminal while the UI runs.
pub struct Screen {
    /// ratatui's terminal: it keeps the last frame and writes only what changed.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Raw mode, the alternate screen, the cursor hidden; and the panic hook.
    pub fn enter() -> io::Result<Screen> {
        install_panic_hook();
        enable_raw_mode()?;
        let entered = execute!(io::stdout(), EnterAlternateScreen, Hide)
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen, shows the cursor and leaves raw mode. Safe to call more than
/// once, and from a panic hook; errors are ignored (a terminal that hung up cannot be
/// restored, and needs not be).
pub fn restore() {
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
    let _ = disable_raw_mode();
}

/// Restores the terminal before a panic's message is printed, then exits (see the module
/// doc).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
            std::process::exit(101);
        }));
    });
}
