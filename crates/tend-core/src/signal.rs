//! Signal names, independent of any platform's numbering.
//!
//! The core speaks of signals by name; `tend-os` maps a [`Signal`] to the kernel's number.

use std::fmt;
use std::str::FromStr;

macro_rules! signals {
    ($($variant:ident => $name:literal,)*) => {
        /// A Unix signal that tend can send, named as in `signal(7)`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Signal {
            $(#[doc = concat!("`", $name, "`")] $variant,)*
        }

        impl Signal {
            /// Every signal tend knows, in the order of `signal(7)`.
            pub const ALL: &'static [Signal] = &[$(Signal::$variant,)*];

            /// The canonical name, such as `"SIGTERM"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Signal::$variant => $name,)*
                }
            }
        }
    };
}

signals! {
    Hup => "SIGHUP",
    Int => "SIGINT",
    Quit => "SIGQUIT",
    Abrt => "SIGABRT",
    Kill => "SIGKILL",
    Usr1 => "SIGUSR1",
    Segv => "SIGSEGV",
    Usr2 => "SIGUSR2",
    Pipe => "SIGPIPE",
    Alrm => "SIGALRM",
    Term => "SIGTERM",
    Chld => "SIGCHLD",
    Cont => "SIGCONT",
    Stop => "SIGSTOP",
    Tstp => "SIGTSTP",
    Ttin => "SIGTTIN",
    Ttou => "SIGTTOU",
    Winch => "SIGWINCH",
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a string that names no signal tend knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSignal(pub String);

impl fmt::Display for UnknownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
        write!(
            f,
            "unknown signal {:?}; expected one of {}",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownSignal {}

impl FromStr for Signal {
    type Err = UnknownSignal;

    /// Accepts `SIGTERM`, `TERM` and `term` alike.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let upper = text.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL
            .iter()
            .copied()
            .find(|s| &s.name()[3..] == bare)
            .ok_or_else(|| UnknownSignal(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_prefix_in_any_case() {
        assert_eq!("SIGTERM".parse(), Ok(Signal::Term));
        assert_eq!("term".parse(), Ok(Signal::Term));
        assert_eq!(" sigusr1 ".parse(), Ok(Signal::Usr1));
        assert!("SIGBOGUS".parse::<Signal>().is_err());
        assert!("".parse::<Signal>().is_err());
        assert!("SIG".parse::<Signal>().is_err());
    }

    #[test]
    fn every_name_round_trips() {
        for &s in Signal::ALL {
            assert_eq!(s.name().parse(), Ok(s));
        }
    }
}
