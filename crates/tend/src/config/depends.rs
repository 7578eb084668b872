//! `depends_on` and `restart_with`: the dependencies between processes, and the checks that
//! need every process of the file (names that exist, `completed` conditions that can hold, no
//! cycle).

use std::collections::HashMap;

use tend_core::{Condition, Dependency, ProcessSpec, RestartPolicy};

use super::error::ConfigError;
use super::read::{Field, Table};
use super::tree::Kind;

type Result<T> = std::result::Result<T, ConfigError>;

/// How many names an error lists before it says how many more there are.
const LISTED: usize = 20;

/// The processes of the file, in file order, and each one's index.
pub(super) struct Names<'a> {
    order: Vec<&'a str>,
    index: HashMap<&'a str, usize>,
}

impl<'a> Names<'a> {
    /// The keys of the `[process]` table.
    pub fn of(table: &Table<'a>) -> Names<'a> {
        let order: Vec<&'a str> = table.entries().map(|(key, _)| key.name.as_str()).collect();
        let index = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        Names { order, index }
    }

    /// "processes: db, web" (the others than `me`), at most [`LISTED`] of them.
    fn listed_without(&self, me: &str) -> String {
        let others: Vec<&str> = self.order.iter().copied().filter(|&n| n != me).collect();
        match others.len() {
            0 => "it has no other process".to_owned(),
            n if n <= LISTED => format!("processes: {}", others.join(", ")),
            n => format!(
                "processes: {}, … ({} more)",
                others[..LISTED].join(", "),
                n - LISTED
            ),
        }
    }
}

/// `depends_on` of process `me`: a table of process name → condition, or an array of names
/// (each `"started"`). Returns the dependencies in the file's order and the place of each,
/// for [`check`]: the entry of the table (its key, its value), or the item of the array.
pub(super) fn depends_on<'a>(
    f: &Field<'a>,
    me: &str,
    names: &Names<'_>,
) -> Result<(Vec<Dependency>, Vec<Field<'a>>)> {
    let mut dependencies: Vec<Dependency> = Vec::new();
    let mut places = Vec::new();
    let check_name = |name: &str, place: &Field<'_>, so_far: &[Dependency]| {
        if name == me {
            return Err(place.key_error(format!(
                "a process cannot depend on itself; remove {name:?} from depends_on"
            )));
        }
        if !names.index.contains_key(name) {
            return Err(place.key_error(format!(
                "{name:?} is not a process in this file; {}",
                names.listed_without(me)
            )));
        }
        if so_far.iter().any(|d| d.name == name) {
            return Err(place.error(format!("{name:?} is listed twice; remove one")));
        }
        Ok(())
    };
    match &f.node.kind {
        Kind::Table(_) => {
            for (key, value) in f.table()?.entries() {
                check_name(&key.name, &value, &dependencies)?;
                dependencies.push(Dependency {
                    name: key.name.clone(),
                    condition: condition(&value)?,
                });
                places.push(value);
            }
        }
        Kind::Array(_) => {
            for item in f.array()? {
                let name = item.string()?;
                check_name(name, &item, &dependencies)?;
                dependencies.push(Dependency {
                    name: name.to_owned(),
                    condition: Condition::Started,
                });
                places.push(item);
            }
        }
        _ => {
            return Err(f.expected(
                "a table of process name → condition, e.g. depends_on = { db = \"ready\" }, \
                 or an array of process names",
            ))
        }
    }
    Ok((dependencies, places))
}

fn condition(f: &Field<'_>) -> Result<Condition> {
    let Kind::String(_) = f.node.kind else {
        return Err(f.expected("a string: \"started\", \"ready\" or \"completed\""));
    };
    match f.string()? {
        "started" => Ok(Condition::Started),
        "ready" => Ok(Condition::Ready),
        "completed" => Ok(Condition::Completed),
        other => Err(f.error(format!(
            "unknown condition {other:?}; expected one of started (its program runs), ready \
             (its readiness check passed, or it is running without one), completed (it exited \
             with a success code)"
        ))),
    }
}

/// `restart_with`: names among `depends_on`.
pub(super) fn restart_with(f: &Field<'_>, depends_on: &[Dependency]) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for item in f.array()? {
        let name = item.string()?;
        if !depends_on.iter().any(|d| d.name == name) {
            return Err(item.error(format!(
                "{name:?} is in restart_with but not in depends_on; restart_with names \
                 dependencies whose restart restarts this process: add {name:?} to depends_on, \
                 or remove it here"
            )));
        }
        if names.iter().any(|n| n == name) {
            return Err(item.error(format!("{name:?} is listed twice; remove one")));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// The checks that need every process: a `completed` dependency must be able to complete,
/// and the dependencies must have no cycle. `places[i][j]` is where the `j`th dependency of
/// process `i` is written.
pub(super) fn check(
    processes: &[ProcessSpec],
    places: &[Vec<Field<'_>>],
    names: &Names<'_>,
) -> Result<()> {
    // Each process's dependencies as indices; every name exists (checked while parsing).
    let edges: Vec<Vec<usize>> = processes
        .iter()
        .map(|p| {
            p.depends_on
                .iter()
                .map(|d| names.index[d.name.as_str()])
                .collect()
        })
        .collect();
    for (i, process) in processes.iter().enumerate() {
        for (j, dependency) in process.depends_on.iter().enumerate() {
            let target = &processes[edges[i][j]];
            if dependency.condition == Condition::Completed
                && target.restart == RestartPolicy::Always
            {
                return Err(places[i][j].error(format!(
                    "{:?} has restart = \"always\", so it never completes; give it restart = \
                     \"on-failure\" or \"never\"",
                    target.name
                )));
            }
        }
    }
    if let Some((cycle, (i, j))) = find_cycle(&edges) {
        let path: Vec<&str> = cycle.iter().map(|&k| processes[k].name.as_str()).collect();
        return Err(places[i][j].key_error(format!(
            "dependency cycle: {} → {} (each waits for the next); remove one of these \
             dependencies",
            path.join(" → "),
            path[0]
        )));
    }
    Ok(())
}

/// A cycle of the graph (`edges[i]`: the nodes `i` points to), as its nodes in order, and the
/// edge that closes it (`(node, index into its edges)`); `None` if there is none.
///
/// A depth-first search with colours, from each node in order and along edges in order, so
/// the same graph always gives the same cycle; iterative, so a long chain cannot overflow the
/// stack; each node and edge is visited once.
fn find_cycle(edges: &[Vec<usize>]) -> Option<(Vec<usize>, (usize, usize))> {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        /// Not reached yet.
        White,
        /// On the path being searched.
        Grey,
        /// Searched whole: no cycle through it.
        Black,
    }
    let mut colour = vec![Colour::White; edges.len()];
    // The path from the root: each node and the index of its next edge to follow.
    let mut path: Vec<(usize, usize)> = Vec::new();
    for root in 0..edges.len() {
        if colour[root] != Colour::White {
            continue;
        }
        colour[root] = Colour::Grey;
        path.push((root, 0));
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let Some(&to) = edges[node].get(*next) else {
                colour[node] = Colour::Black;
                path.pop();
                continue;
            };
            let edge = (node, *next);
            *next += 1;
            match colour[to] {
                Colour::White => {
                    colour[to] = Colour::Grey;
                    path.push((to, 0));
                }
                Colour::Grey => {
                    let start = path
                        .iter()
                        .position(|&(n, _)| n == to)
                        .expect("on the path");
                    let cycle = path[start..].iter().map(|&(n, _)| n).collect();
                    return Some((cycle, edge));
                }
                Colour::Black => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find_cycle;

    #[test]
    fn finds_no_cycle_in_a_dag() {
        assert_eq!(find_cycle(&[vec![1, 2], vec![2], vec![]]), None);
        assert_eq!(find_cycle(&[]), None);
    }

    #[test]
    fn finds_the_first_cycle_in_order_with_its_closing_edge() {
        // 0 → 1 → 2 → 1, and 3 → 3.
        let edges = [vec![1], vec![2], vec![3, 1], vec![3]];
        assert_eq!(find_cycle(&edges), Some((vec![3], (3, 0))));
        let edges = [vec![1], vec![2], vec![1, 3], vec![3]];
        assert_eq!(find_cycle(&edges), Some((vec![1, 2], (2, 0))));
    }

    #[test]
    fn a_long_chain_is_searched_without_recursion() {
        let n = 200_000;
        let mut edges: Vec<Vec<usize>> = (0..n).map(|i| vec![i + 1]).collect();
        edges[n - 1] = vec![];
        assert_eq!(find_cycle(&edges), None);
        edges[n - 1] = vec![0];
        let (cycle, edge) = find_cycle(&edges).unwrap();
        assert_eq!(cycle.len(), n);
        assert_eq!(edge, (n - 1, 0));
    }
}
