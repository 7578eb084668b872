//! `--formation web=2,worker=1,all=0` (foreman's `-m`): how many instances of each process
//! to run, over what the config says.

use std::sync::Arc;

use tend_core::Spec;

use super::error::ConfigError;

/// The most instances a formation may ask for, as `replicas` in the config.
const MAX_COUNT: u32 = 10_000;

/// How many instances of each process run. A count of 0 leaves a process out of `tend up`
/// (it can still be started by name, with one instance).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Formation {
    /// `all=N`: the count of each process not named.
    all: Option<u32>,
    /// `NAME=N`, in the order given.
    counts: Vec<(String, u32)>,
}

impl Formation {
    /// Reads `web=2,worker=1` (spaces allowed; `all=N` for every process not named).
    pub fn parse(text: &str) -> Result<Formation, String> {
        let mut formation = Formation::default();
        let pairs = text.split(',').map(str::trim).filter(|p| !p.is_empty());
        for pair in pairs {
            let (name, count) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not NAME=COUNT, such as web=2"))?;
            let (name, count) = (name.trim(), count.trim());
            let count = parse_count(pair, count)?;
            if name == "all" {
                formation.all = Some(count);
            } else if formation.counts.iter().any(|(n, _)| n == name) {
                return Err(format!("{name} is given twice"));
            } else {
                formation.counts.push((name.to_owned(), count));
            }
        }
        if formation.all.is_none() && formation.counts.is_empty() {
            return Err("empty; write NAME=COUNT pairs, such as web=2,worker=1".into());
        }
        Ok(formation)
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.counts.is_empty()
    }

    /// The count asked for `name`, if any.
    pub(super) fn count(&self, name: &str) -> Option<u32> {
        let named = self.counts.iter().find(|(n, _)| n == name);
        named.map(|&(_, count)| count).or(self.all)
    }

    /// Applies the counts to `spec` (a count of 0 turns autostart off). A name the spec does
    /// not have is an error about `file`.
    pub(super) fn apply(&self, spec: &mut Spec, file: &std::path::Path) -> Result<(), ConfigError> {
        if let Some((unknown, _)) = self
            .counts
            .iter()
            .find(|(name, _)| !spec.processes.iter().any(|p| p.name == *name))
        {
            let known: Vec<&str> = spec.processes.iter().map(|p| p.name.as_str()).collect();
            return Err(ConfigError::file(
                file,
                format!(
                    "--formation names {unknown:?}, which is not a process here; known: {}",
                    known.join(", ")
                ),
            ));
        }
        for process in &mut spec.processes {
            let Some(count) = self.count(&process.name) else {
                continue;
            };
            let process = Arc::make_mut(process);
            match count {
                0 => process.autostart = false,
                n => {
                    process.replicas = n;
                    process.autostart = true;
                }
            }
            super::spec::log_names_fit(process)
                .map_err(|why| ConfigError::file(file, format!("{}: {why}", process.name)))?;
            if let Some(first) = process.port {
                let last = u32::from(first) + process.replicas - 1;
                if last > u32::from(u16::MAX) {
                    return Err(ConfigError::file(
                        file,
                        format!(
                            "--formation {}={count}: its last instance would get PORT {last}, \
                             beyond 65535",
                            process.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The COUNT of `pair` (`NAME=COUNT`, of `--formation` or `tend scale`): a whole number from 0
/// to 10000, or an error that says which of the two it is not.
pub fn parse_count(pair: &str, count: &str) -> Result<u32, String> {
    if count.is_empty() {
        return Err(format!("{pair:?}: no count after =; such as web=2"));
    }
    // A whole number (of any size or sign) out of range, or not a number at all.
    match count.parse::<i128>() {
        Ok(n) => u32::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_COUNT)
            .ok_or_else(|| format!("{pair:?}: the count must be 0 to {MAX_COUNT}")),
        Err(_) => Err(format!(
            "{pair:?}: {count:?} is not a number; the count is 0 to {MAX_COUNT}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_foremans_syntax() {
        let f = Formation::parse("web=2, worker = 1,all=0").unwrap();
        assert_eq!(f.count("web"), Some(2));
        assert_eq!(f.count("worker"), Some(1));
        assert_eq!(f.count("clock"), Some(0));
        let f = Formation::parse("web=3").unwrap();
        assert_eq!(f.count("clock"), None);
    }

    #[test]
    fn refuses_what_it_cannot_mean() {
        for (text, why) in [
            ("web", "is not NAME=COUNT"),
            ("web=x", "\"x\" is not a number; the count is 0 to 10000"),
            ("web=", "no count after ="),
            ("web=-1", "the count must be 0 to 10000"),
            (
                "web=99999999999999999999999",
                "the count must be 0 to 10000",
            ),
            ("web=10001", "the count must be 0 to 10000"),
            ("web=1,web=2", "web is given twice"),
            ("", "empty"),
            (" , ", "empty"),
        ] {
            let err = Formation::parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
