//! Plain terminal tables: aligned columns, long cells cut with `…`, colour only on a terminal
//! and never when `NO_COLOR` is set.

use std::io::IsTerminal;

pub struct Table {
    headers: Vec<String>,
    max_widths: Vec<usize>,
    rows: Vec<Vec<String>>,
    right_aligned: Vec<bool>,
}

/// True when stdout is a terminal and `NO_COLOR` is unset.
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

pub fn bold(s: &str) -> String {
    if use_color() {
        format!("\x1b[1m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

/// Colours a decision word (deny/block red, ask yellow, allow green).
pub fn decision(s: &str) -> String {
    if !use_color() {
        return s.to_owned();
    }
    let code = match s {
        "deny" | "block" => "31",
        "ask" | "defer" => "33",
        "allow" => "32",
        _ => return s.to_owned(),
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// A time for a table: `MM-DD HH:MM:SS` in the local time zone (the `TZ` variable, else the
/// system's), as people read times; `wide`: the stored RFC 3339 UTC time with milliseconds.
pub fn time(ns: i64, wide: bool) -> String {
    if wide {
        return chronicle::store::read::rfc3339(ns);
    }
    let secs = ns.div_euclid(1_000_000_000) as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed struct we own; it reads TZ itself.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return chronicle::store::read::rfc3339(ns);
        }
        tm
    };
    format!("{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
}

fn visible_len(s: &str) -> usize {
    // Skip ANSI escape sequences when measuring.
    let mut n = 0;
    let mut in_esc = false;
    for c in s.chars() {
        match (in_esc, c) {
            (false, '\x1b') => in_esc = true,
            (true, 'm') => in_esc = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

fn cut(s: &str, max: usize) -> String {
    let s = s.replace(['\n', '\r', '\t'], " ");
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl Table {
    /// `columns`: (header, max width, right-aligned).
    pub fn new(columns: &[(&str, usize, bool)]) -> Table {
        Table {
            headers: columns.iter().map(|c| c.0.to_owned()).collect(),
            max_widths: columns.iter().map(|c| c.1).collect(),
            right_aligned: columns.iter().map(|c| c.2).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| if c.contains('\x1b') { c } else { cut(&c, self.max_widths.get(i).copied().unwrap_or(40)) })
            .collect();
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(visible_len(c));
                }
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let last = cells.len().saturating_sub(1);
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(visible_len(c));
                if self.right_aligned[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    if i != last {
                        out.push_str(&" ".repeat(pad));
                    }
                }
                if i != last {
                    out.push_str("  ");
                }
            }
            out.push('\n');
        };
        let headers: Vec<String> = self.headers.iter().map(|h| bold(h)).collect();
        line(&headers, &mut out);
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_local_and_short_or_wide_and_utc() {
        // 2026-12-04T23:30:00Z
        let ns = 1_796_427_000_000_000_000;
        assert_eq!(time(ns, true), "2026-12-04T23:30:00.000Z");
        let short = time(ns, false);
        assert_eq!(short.len(), 14, "{short}");
        assert!(
            short.ends_with(":30:00") || short.ends_with(":00:00") || short.ends_with(":45:00") || short.ends_with(":15:00"),
            "{short}"
        );
    }

    #[test]
    fn aligns_and_cuts() {
        let mut t = Table::new(&[("NAME", 5, false), ("N", 5, true)]);
        t.row(vec!["abcdefgh".into(), "7".into()]);
        t.row(vec!["x".into(), "123".into()]);
        let out = t.render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "abcd…    7");
        assert_eq!(lines[2], "x      123");
    }
}
