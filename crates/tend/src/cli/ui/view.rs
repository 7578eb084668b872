//! How `tend ui` draws an [`App`] with ratatui: from top to bottom, a header line (tend's
//! version, pid, uptime and config), the process table (the columns of `tend status`, the
//! selected row reversed), the selected instance's details (what it waits for, its
//! sd_notify `STATUS=`, a failing health check, a log error, a spawn error in full), the log
//! pane, a line for news or the prompt being typed, and the main keys. `?` lays the whole
//! keymap over it.
//!
//! Drawing reads the app and the clock it is given, nothing else: tests draw into ratatui's
//! `TestBackend` and read the cells. Every text that comes from the supervisor or a child is
//! passed through [`terminal_safe`] (log lines once, as they arrive).

use std::time::Instant;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use tend_proto::{LastExit, State};

use super::app::{terminal_safe, App, Mode, Scope};
use crate::cli::render;

/// Every key, for the help overlay (and, in the same words, docs/ui.md).
pub const KEYMAP: &[(&str, &str)] = &[
    ("↑ ↓  j k", "select an instance"),
    ("s", "start it (and what it depends on)"),
    ("t", "stop it"),
    ("r", "restart it"),
    (
        "+ -",
        "one instance more or fewer of its process (tend scale)",
    ),
    (
        "K",
        "send it a signal: type a name (TERM, HUP, USR1…), Enter",
    ),
    ("a", "logs of the selected instance, or of all"),
    ("/", "filter the logs: type text, Enter; Esc clears"),
    ("PgUp PgDn", "scroll the logs; End: back to the newest"),
    ("Ctrl+L", "draw again and ask for the status"),
    ("?", "this help; any key closes it"),
    ("q  Ctrl+C", "quit"),
];

/// The line of main keys at the bottom: 80 columns, the width of the smallest usual terminal.
const HELP_LINE: &str =
    "↑↓ select  s start  t stop  r restart  K signal  a all  / filter  ? help  q quit";

/// The most rows of details under the table.
const DETAIL_ROWS: usize = 3;

/// Draws `app` as of `now` (`now_ms`: the wall clock, for tend's uptime). Returns how many log
/// lines the log pane shows, for paging.
pub fn draw(frame: &mut Frame<'_>, app: &App, now: Instant, now_ms: u64, colour: bool) -> usize {
    let area = frame.area();
    let details = details(app);
    let rows = app.instances().len().max(1) as u16;
    // The table takes what it needs (its rows, a header and two borders), at most 2/5.
    let table_height = (rows + 3).min((area.height * 2 / 5).max(4));
    let [header, table, detail, logs, news, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_height),
        Constraint::Length(details.len() as u16),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let header_text = render::status_header(app.hello(), now_ms);
    frame.render_widget(
        Paragraph::new(terminal_safe(header_text.trim_end()))
            .style(Style::new().add_modifier(Modifier::BOLD)),
        header,
    );
    draw_table(frame, app, table, now, colour);
    frame.render_widget(
        Paragraph::new(details.into_iter().map(Line::from).collect::<Vec<_>>()),
        detail,
    );
    let shown = draw_logs(frame, app, logs, colour);
    draw_news(frame, app, news);
    frame.render_widget(
        Paragraph::new(HELP_LINE).style(Style::new().add_modifier(Modifier::REVERSED)),
        help,
    );
    if app.mode() == &Mode::Help {
        draw_help(frame, area);
    }
    shown
}

/// The table of instances, with uptimes as of `now`.
fn draw_table(frame: &mut Frame<'_>, app: &App, area: Rect, now: Instant, colour: bool) {
    let age_ms = app
        .status_at()
        .map_or(0, |at| now.saturating_duration_since(at).as_millis() as u64);
    let rows: Vec<[String; 9]> = app
        .instances()
        .iter()
        .map(|status| {
            let mut cells = render::status_row(status).map(|cell| terminal_safe(&cell));
            cells[3] = render::uptime(status.uptime_ms.map(|ms| ms.saturating_add(age_ms)));
            cells
        })
        .collect();
    let mut widths = render::HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let table_rows = rows
        .into_iter()
        .zip(app.instances())
        .map(|(cells, status)| {
            let state = state_style(status.state, colour);
            Row::new(
                cells
                    .into_iter()
                    .enumerate()
                    .map(|(i, cell)| {
                        let style = if i == 1 { state } else { Style::new() };
                        Span::styled(cell, style)
                    })
                    .collect::<Vec<_>>(),
            )
        });
    let constraints = widths.map(|w| Constraint::Length(w as u16));
    let title = match app.instances().len() {
        0 => " no processes ".to_owned(),
        1 => " 1 instance ".to_owned(),
        n => format!(" {n} instances "),
    };
    let table = Table::new(table_rows, constraints)
        .header(Row::new(render::HEADER).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(title))
        .column_spacing(2)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ");
    let mut state = TableState::new().with_selected(app.selected());
    frame.render_stateful_widget(table, area, &mut state);
}

/// How a state looks: up in green, on its way in yellow, failed in red, down in grey.
fn state_style(state: State, colour: bool) -> Style {
    if !colour {
        return Style::new();
    }
    let colour = match state {
        State::Running | State::Ready => Color::Green,
        State::Starting | State::Waiting | State::Backoff | State::Stopping => Color::Yellow,
        State::Failed => Color::Red,
        State::Stopped | State::Exited => Color::DarkGray,
    };
    Style::new().fg(colour)
}

/// The lines about the selected instance that its row has no room for, at most
/// [`DETAIL_ROWS`].
fn details(app: &App) -> Vec<String> {
    let Some(status) = app.selected_instance() else {
        return Vec::new();
    };
    let mut lines = render::detail_lines(status);
    if let Some(LastExit::SpawnError(error)) = &status.last_exit {
        lines.push(format!("could not start: {error}"));
    }
    lines.truncate(DETAIL_ROWS);
    lines
        .iter()
        .map(|line| format!(" {}: {}", status.name, terminal_safe(line)))
        .collect()
}

/// The log pane; returns how many lines it shows.
fn draw_logs(frame: &mut Frame<'_>, app: &App, area: Rect, colour: bool) -> usize {
    let of = match (app.scope(), app.selected_instance()) {
        (Scope::All, _) => "all".to_owned(),
        (Scope::Selected, Some(status)) => terminal_safe(&status.name),
        (Scope::Selected, None) => "none selected".to_owned(),
    };
    let mut title = format!(" logs of {of} ");
    if let Some(filter) = app.filter() {
        title.push_str(&format!("| filter: {} ", terminal_safe(filter)));
    }
    if app.scroll() > 0 {
        title.push_str(&format!("| {} lines up (End: newest) ", app.scroll()));
    }
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    let height = usize::from(inner.height);
    let lines: Vec<Line<'_>> = app
        .log_window(height)
        .into_iter()
        .map(|entry| {
            let text = Span::raw(entry.text.as_str());
            if app.scope() == Scope::All {
                let process = render::process_of(&entry.instance);
                let prefix = format!("{} | ", terminal_safe(&entry.instance));
                let style = if colour {
                    Style::new().fg(ansi_colour(crate::style::colour_of(process)))
                } else {
                    Style::new()
                };
                Line::from(vec![Span::styled(prefix, style), text])
            } else {
                Line::from(text)
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
    height
}

/// The ratatui colour of one of tend's ANSI prefix colours.
fn ansi_colour(code: &str) -> Color {
    match code {
        "31" => Color::Red,
        "32" => Color::Green,
        "33" => Color::Yellow,
        "34" => Color::Blue,
        "35" => Color::Magenta,
        _ => Color::Cyan,
    }
}

/// The line above the keys: the prompt being typed (with the cursor at its end), or the news.
fn draw_news(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let prompt = match app.mode() {
        Mode::Filter(text) => Some(format!("/{}", terminal_safe(text))),
        Mode::Signal(text) => {
            let name = app
                .selected_instance()
                .map_or_else(String::new, |i| terminal_safe(&i.name));
            Some(format!(
                "signal for {name} (TERM, HUP, USR1…; Esc cancels): {text}"
            ))
        }
        Mode::Normal | Mode::Help => None,
    };
    match prompt {
        Some(prompt) => {
            let x = area
                .x
                .saturating_add(prompt.chars().count() as u16)
                .min(area.right().saturating_sub(1));
            frame.render_widget(Paragraph::new(prompt), area);
            frame.set_cursor_position((x, area.y));
        }
        None => {
            let news = app.news().map(terminal_safe).unwrap_or_default();
            frame.render_widget(Paragraph::new(news), area);
        }
    }
}

/// The whole keymap, in a box in the middle.
fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let key_width = KEYMAP
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line<'_>> = KEYMAP
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(
                    format!(" {keys:key_width$}  "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    let width = lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 3;
    let height = lines.len() as u16 + 2;
    let [_, column, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(width.min(area.width)),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, popup, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(height.min(area.height)),
        Constraint::Fill(1),
    ])
    .areas(column);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" tend ui: keys ")),
        popup,
    );
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
