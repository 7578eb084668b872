//! What a waiting `start` or `restart` shows while it waits: the events of its instances as
//! they happen (each spawn, exit and restart, the reason a start gives up). On a terminal, one
//! live line on stderr with a spinner, rewritten in place and cleared at the end; otherwise
//! plain lines on stderr, so that stdout keeps only the result.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the spinner turns.
const FRAME: Duration = Duration::from_millis(100);
/// The spinner's frames.
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The progress of one waiting request.
pub struct Progress {
    live: Option<Live>,
}

/// The live line of a terminal: the text to show, and the thread that draws it.
struct Live {
    text: Arc<Mutex<String>>,
    done: Arc<AtomicBool>,
    drawer: Option<JoinHandle<()>>,
}

impl Progress {
    /// A live line when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Progress {
        Progress {
            live: std::io::stderr().is_terminal().then(|| Live {
                text: Arc::new(Mutex::new(String::new())),
                done: Arc::new(AtomicBool::new(false)),
                drawer: None,
            }),
        }
    }

    /// Shows one event's line (already made safe to print); plain lines go to `err`.
    pub fn event(&mut self, line: &str, err: &mut dyn Write) {
        let Some(live) = &mut self.live else {
            let _ = writeln!(err, "{line}");
            return;
        };
        *live.text.lock().expect("progress text") = line.to_owned();
        if live.drawer.is_none() {
            let (text, done) = (Arc::clone(&live.text), Arc::clone(&live.done));
            live.drawer = Some(std::thread::spawn(move || draw(&text, &done)));
        }
    }
}

impl Drop for Progress {
    /// Stops the spinner and clears its line.
    fn drop(&mut self) {
        if let Some(live) = &mut self.live {
            live.done.store(true, Ordering::Relaxed);
            if let Some(drawer) = live.drawer.take() {
                let _ = drawer.join();
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            }
        }
    }
}

/// Redraws the live line every frame until `done`.
fn draw(text: &Mutex<String>, done: &AtomicBool) {
    let mut frame = 0;
    while !done.load(Ordering::Relaxed) {
        let line = text.lock().expect("progress text").clone();
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K{} {line}",
            FRAMES[frame % FRAMES.len()]
        );
        let _ = std::io::stderr().flush();
        frame += 1;
        std::thread::sleep(FRAME);
    }
}
