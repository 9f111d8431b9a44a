//! `chronicle report --html`: one self-contained HTML file (no network, no CDN, no script) with
//! charts drawn as inline SVG from the store: latency distributions per event type and per
//! plugin, a session timeline with tool durations, decisions, violations, and the cache hit
//! ratio over time. Every mark carries `data-*` attributes with the number it draws, so a test
//! (or a curious reader) can check the picture against the data.

use std::fmt::Write as _;

use crate::store::stats::{Stats, Window};

/// A failure to read the report's rows (from the local store or the team database).
pub type RowsError = Box<dyn std::error::Error + Send + Sync>;

/// The row sets the page draws besides the stats, each as JSON objects with these columns:
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// `id`, `received_at_ns`, `name` (event type, or the kind), `decision`: the newest 2,000,
    /// oldest first.
    Timeline,
    /// `n`: how many events the timeline's window holds (one row).
    TimelineTotal,
    /// `session_id`, `first_ns`, `last_ns`, `events`: sessions with events in the window, the
    /// most recent first (at most 50).
    Sessions,
    /// `tool_use_id`, `tool_name`, `started_at_ns`, `ended_at_ns`, `duration_ms`, `status`:
    /// completed tool calls, the first 500.
    ToolSpans,
    /// `id`, `received_at_ns`, `hook_event_name`, `tool_name`, `decision`, `answer`: events with
    /// a decision, the first 500.
    Decisions,
    /// `t` (received_at_ns), `cache` (`hit`/`miss`): cacheable plugin calls in order.
    CacheCalls,
}

/// Where a report's rows come from: the local store, or the team database (`--source`).
pub trait ReportRows {
    fn rows(&mut self, which: Rows, w: &Window) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, RowsError>;
}

impl ReportRows for crate::store::Store {
    fn rows(&mut self, which: Rows, w: &Window) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, RowsError> {
        Ok(self.report_rows(which, w)?)
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

const PALETTE: &[&str] = &["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/// One latency row: label, p50, p95, p99 (ms) and how many samples.
pub struct LatencyRow {
    pub label: String,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub count: u64,
}

/// Round steps for an axis from 0 to `max`: about five ticks.
fn ticks(max: f64) -> Vec<f64> {
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(mag * 10.0);
    (0..=((max / step).ceil() as usize)).map(|i| i as f64 * step).collect()
}

fn ms_label(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Horizontal bars on a labelled millisecond axis: p95 as the bar, p50 inside it, p99 as a
/// tick; each label says how many samples it stands on.
fn latency_chart(id: &str, title: &str, rows: &[LatencyRow]) -> String {
    if rows.is_empty() {
        return format!("<figure><figcaption>{}</figcaption><p>No measurements in this window.</p></figure>", esc(title));
    }
    let top = rows.iter().map(|r| r.p99.max(r.p95)).fold(0.0_f64, f64::max).max(1e-6);
    let axis = ticks(top);
    let max = axis.last().copied().unwrap_or(top).max(top);
    let (label_w, bar_w, row_h) = (230.0, 560.0, 26.0);
    let width = label_w + bar_w + 130.0;
    let h = row_h * rows.len() as f64 + 50.0;
    let x = |v: f64| label_w + v / max * bar_w;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg id=\"{id}\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {width} {h}\" \
         style=\"width:100%;max-width:{width}px;height:auto\">",
        esc(title),
        esc(title)
    );
    let axis_y = 10.0 + row_h * rows.len() as f64;
    for t in &axis {
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"6\" y2=\"{axis_y}\"/><text class=\"axis\" x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>",
            x(*t),
            axis_y + 14.0,
            ms_label(*t)
        );
    }
    let _ = write!(s, "<text class=\"axis\" x=\"{}\" y=\"{}\">ms</text>", x(max) + 16.0, axis_y + 14.0);
    for (i, r) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let (name, n) = (esc(&r.label), r.count);
        let shown = esc(&format!("{} (n={n})", r.label));
        let (p50, p95, p99) = (r.p50, r.p95, r.p99);
        let (w50, w95, x99) = (x(p50) - label_w, x(p95) - label_w, x(p99));
        let (text_x, text_y, inner_y, tick_top, tick_bottom) = (label_w - 8.0, y + 14.0, y + 4.0, y - 1.0, y + 19.0);
        let value_x = x(p99.max(p95)) + 6.0;
        let (l50, l95, l99) = (ms_label(p50), ms_label(p95), ms_label(p99));
        let _ = write!(
            s,
            "<text x=\"{text_x}\" y=\"{text_y}\" text-anchor=\"end\" class=\"label\">{shown}</text>\
             <rect class=\"p95\" x=\"{label_w}\" y=\"{y}\" width=\"{w95:.1}\" height=\"18\" data-label=\"{name}\" data-p95-ms=\"{p95}\"><title>{name} p95 {p95:.3} ms</title></rect>\
             <rect class=\"p50\" x=\"{label_w}\" y=\"{inner_y}\" width=\"{w50:.1}\" height=\"10\" data-label=\"{name}\" data-p50-ms=\"{p50}\" data-count=\"{n}\"><title>{name} p50 {p50:.3} ms (n={n})</title></rect>\
             <line class=\"p99\" x1=\"{x99:.1}\" x2=\"{x99:.1}\" y1=\"{tick_top}\" y2=\"{tick_bottom}\" data-p99-ms=\"{p99}\"><title>{name} p99 {p99:.3} ms</title></line>\
             <text x=\"{value_x:.1}\" y=\"{text_y}\" class=\"value\">{l50} / {l95} / {l99} ms</text>"
        );
    }
    let _ = write!(
        s,
        "<text x=\"{label_w}\" y=\"{}\" class=\"axis\">inner bar p50, bar p95, tick p99 (the numbers: p50 / p95 / p99); n = samples</text></svg></figure>",
        h - 6.0
    );
    s
}

/// `HH:MM:SS` (UTC) of Unix nanoseconds, for axes; with milliseconds when the axis spans
/// under a minute.
fn clock(ns: i64, span_ns: i64) -> String {
    let t = crate::store::read::rfc3339(ns);
    if span_ns < 60_000_000_000 {
        t[11..23].to_owned()
    } else {
        t[11..19].to_owned()
    }
}

/// Events on a time axis (one tick per event, coloured by type) and tool calls as bars: one
/// session's (`w.session`), the newest 2,000 of them.
fn timeline(source: &mut dyn ReportRows, w: &Window) -> Result<String, RowsError> {
    let events = source.rows(Rows::Timeline, w)?;
    let total = source.rows(Rows::TimelineTotal, w)?.first().and_then(|r| r["n"].as_i64()).unwrap_or(events.len() as i64);
    let times: Vec<i64> = events.iter().filter_map(|e| e["received_at_ns"].as_i64()).collect();
    let (Some(&t0), Some(&t1)) = (times.iter().min(), times.iter().max()) else {
        return Ok("<p>No events in this window.</p>".into());
    };
    let tools: Vec<_> = source
        .rows(Rows::ToolSpans, w)?
        .into_iter()
        .filter(|t| t["started_at_ns"].as_i64().is_some_and(|a| a >= t0) && t["ended_at_ns"].as_i64().is_some_and(|b| b <= t1))
        .collect();
    let span = (t1 - t0).max(1) as f64;
    let (left, width) = (10.0, 900.0);
    let x = |t: i64| left + (t - t0) as f64 / span * width;
    let mut names: Vec<String> = events.iter().filter_map(|e| e["name"].as_str().map(str::to_owned)).collect();
    names.sort();
    names.dedup();
    let color = |n: &str| PALETTE[names.iter().position(|x| x == n).unwrap_or(0) % PALETTE.len()];
    let shown_tools = tools.len().min(40);
    let axis_y = 58.0 + shown_tools as f64 * 8.0;
    let legend_y = axis_y + 30.0;
    let h = legend_y + 20.0 * (names.len() + 2).div_ceil(4) as f64 + 10.0;
    let full = left * 2.0 + width;
    let caption = if total > events.len() as i64 {
        format!("Timeline: the newest {} of {total} events, and tool calls (start to end; times UTC)", events.len())
    } else {
        format!("Timeline: {total} events, and tool calls (start to end; times UTC)")
    };
    let mut s = format!(
        "<figure><figcaption id=\"timeline-caption\" data-shown=\"{}\" data-total=\"{total}\">{caption}</figcaption>\
         <svg id=\"timeline\" viewBox=\"0 0 {full} {h}\" style=\"width:100%;max-width:{full}px;height:auto\">",
        events.len()
    );
    for e in &events {
        let (Some(t), Some(n)) = (e["received_at_ns"].as_i64(), e["name"].as_str()) else { continue };
        let decided = e["decision"].as_str().is_some_and(|d| d != "none");
        let _ = write!(
            s,
            "<line class=\"event\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"10\" y2=\"{1}\" stroke=\"{2}\" stroke-width=\"{3}\" data-event-id=\"{4}\" data-event=\"{5}\"><title>#{4} {5} {6}</title></line>",
            x(t),
            if decided { 40 } else { 30 },
            color(n),
            if decided { 3 } else { 1 },
            e["id"],
            esc(n),
            clock(t, 0)
        );
    }
    for (i, t) in tools.iter().take(40).enumerate() {
        let (Some(a), Some(b)) = (t["started_at_ns"].as_i64(), t["ended_at_ns"].as_i64()) else { continue };
        let y = 50.0 + i as f64 * 8.0;
        let failed = t["status"] == "failure";
        let name = esc(t["tool_name"].as_str().unwrap_or(""));
        let ms = t["duration_ms"].as_f64().unwrap_or(0.0);
        let _ = write!(
            s,
            "<rect class=\"tool\" x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"6\" fill=\"{}\" data-tool=\"{name}\" data-duration-ms=\"{ms}\"><title>{name} {ms:.1} ms{}</title></rect>",
            x(a),
            (x(b) - x(a)).max(1.5),
            if failed { "#b30000" } else { "#555" },
            if failed { " (failed)" } else { "" },
        );
    }
    // The time axis: about six labelled ticks, UTC.
    let _ = write!(s, "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{axis_y}\" y2=\"{axis_y}\"/>", left + width);
    for i in 0..=5 {
        let t = t0 + ((t1 - t0) as f64 * i as f64 / 5.0) as i64;
        let anchor = match i {
            0 => "start",
            5 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{axis_y}\" y2=\"{1}\"/><text class=\"axis time\" x=\"{0:.1}\" y=\"{2}\" text-anchor=\"{anchor}\">{3}</text>",
            x(t),
            axis_y + 4.0,
            axis_y + 16.0,
            clock(t, t1 - t0)
        );
    }
    let legend: Vec<(String, &str, bool)> = names
        .iter()
        .map(|n| (n.clone(), color(n), false))
        .chain([("tool call".to_owned(), "#555", true), ("failed tool call".to_owned(), "#b30000", true)])
        .collect();
    for (i, (n, c, bar)) in legend.iter().enumerate() {
        let (lx, ly) = (left + (i % 4) as f64 * 225.0, legend_y + (i / 4) as f64 * 20.0);
        let mark = if *bar {
            format!("<rect x=\"{lx}\" y=\"{}\" width=\"14\" height=\"6\" fill=\"{c}\"/>", ly + 2.0)
        } else {
            format!("<rect x=\"{lx}\" y=\"{ly}\" width=\"3\" height=\"10\" fill=\"{c}\"/>")
        };
        let _ = write!(s, "{mark}<text x=\"{}\" y=\"{}\" class=\"legend\">{}</text>", lx + 18.0, ly + 9.0, esc(n));
    }
    s.push_str("</svg></figure>");
    Ok(s)
}

/// The sessions the window holds, newest first, each with the command that reports on it.
fn session_list(sessions: &[serde_json::Map<String, serde_json::Value>], shown: Option<&str>) -> String {
    let mut s = String::from(
        "<div class=\"wide\"><table id=\"sessions\"><tr><th>session</th><th>first event (UTC)</th><th>last event (UTC)</th><th>events</th><th>report on it</th></tr>",
    );
    for r in sessions {
        let id = r["session_id"].as_str().unwrap_or("");
        let short: String = id.chars().take(8).collect();
        let mark = if Some(id) == shown { " class=\"shown\"" } else { "" };
        let _ = write!(
            s,
            "<tr{mark} data-session=\"{}\"><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>chronicle report --html FILE --session {}</code></td></tr>",
            esc(id),
            esc(id),
            esc(&short),
            crate::store::read::rfc3339(r["first_ns"].as_i64().unwrap_or(0)),
            crate::store::read::rfc3339(r["last_ns"].as_i64().unwrap_or(0)),
            r["events"],
            esc(&short)
        );
    }
    s.push_str("</table></div>");
    s
}

/// Hit ratio of cacheable plugin calls over time, in up to 20 buckets.
fn cache_chart(source: &mut dyn ReportRows, w: &Window) -> Result<String, RowsError> {
    let rows = source.rows(Rows::CacheCalls, w)?;
    if rows.is_empty() {
        return Ok("<p>No cacheable plugin calls in this window.</p>".into());
    }
    let n = rows.len();
    let buckets = n.clamp(1, 20);
    let per = n.div_ceil(buckets);
    let points: Vec<(usize, f64, usize)> = rows
        .chunks(per)
        .enumerate()
        .map(|(i, c)| {
            let hits = c.iter().filter(|r| r["cache"] == "hit").count();
            (i, hits as f64 / c.len() as f64, c.len())
        })
        .collect();
    let (left, width, height) = (40.0, 860.0, 160.0);
    let step = if points.len() > 1 { width / (points.len() - 1) as f64 } else { 0.0 };
    let px = |i: usize| left + i as f64 * step;
    let py = |r: f64| 10.0 + (1.0 - r) * height;
    let path: Vec<String> = points.iter().map(|(i, r, _)| format!("{:.1},{:.1}", px(*i), py(*r))).collect();
    let mut s = format!(
        "<figure><figcaption>Cache hit ratio over time (cacheable plugin calls, in order)</figcaption><svg id=\"cache\" viewBox=\"0 0 {0} {1}\" style=\"width:100%;max-width:{0}px;height:auto\">\
         <line x1=\"{left}\" x2=\"{2}\" y1=\"{3}\" y2=\"{3}\" class=\"grid\"/><text x=\"4\" y=\"14\" class=\"axis\">100%</text><text x=\"4\" y=\"{3}\" class=\"axis\">0%</text>\
         <polyline fill=\"none\" stroke=\"#4e79a7\" stroke-width=\"2\" points=\"{4}\"/>",
        left + width + 20.0,
        height + 30.0,
        left + width,
        py(0.0),
        path.join(" ")
    );
    for (i, r, calls) in &points {
        let _ = write!(s, "<circle class=\"hit-ratio\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#4e79a7\" data-hit-ratio=\"{r:.4}\" data-calls=\"{calls}\"><title>{:.0}% of {calls} calls</title></circle>", px(*i), py(*r), r * 100.0);
    }
    s.push_str("</svg></figure>");
    Ok(s)
}

/// The whole page.
pub fn html(source: &mut dyn ReportRows, stats: &Stats, w: &Window, title: &str) -> Result<String, RowsError> {
    let mut page = String::new();
    let p = &stats.performance_stats;
    let total_events: u64 = stats.events.values().map(|e| e.count).sum();
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>\
         body{{font:14px/1.45 system-ui,sans-serif;margin:24px auto;padding:0 12px;color:#222;max-width:1000px}}\
         .wide{{overflow-x:auto}} tr.shown td{{font-weight:600}} .empty{{padding:16px;background:#f6f6f6;border-radius:6px}}\
         @media (max-width:600px){{body{{margin:12px auto;font-size:13px}} td,th{{padding:2px 4px}}}}\
         h1{{font-size:22px}} h2{{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}}\
         figure{{margin:12px 0}} figcaption{{font-weight:600;margin-bottom:6px}}\
         .label,.value,.axis,.legend{{font-size:12px;fill:#333}} .p95{{fill:#a0cbe8}} .p50{{fill:#4e79a7}} .p99{{stroke:#1f3b57;stroke-width:2}} .grid{{stroke:#ccc}}\
         table{{border-collapse:collapse;font-size:13px}} td,th{{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}}\
         .deny,.block{{color:#c0392b;font-weight:600}} .ask,.defer{{color:#b7950b;font-weight:600}} .kpi span{{display:inline-block;margin-right:24px}}\
         </style></head><body><h1>{}</h1>",
        esc(title),
        esc(title)
    );
    let sessions = source.rows(Rows::Sessions, w)?;
    if total_events == 0 || sessions.is_empty() && stats.events.is_empty() {
        let _ = write!(
            page,
            "<p class=\"empty\" id=\"empty\">No events yet{}. Chronicle records every event once its hooks are installed: \
             run <code>chronicle install</code> and use Claude Code, or <code>chronicle demo</code> to see a recorded session.</p>",
            if w.since_ns.is_some() || w.session.is_some() { " in this window" } else { "" }
        );
        let _ = writeln!(page, "</body></html>");
        return Ok(page);
    }
    // What the page covers.
    let first = sessions.iter().filter_map(|r| r["first_ns"].as_i64()).min().unwrap_or(0);
    let last = sessions.iter().filter_map(|r| r["last_ns"].as_i64()).max().unwrap_or(0);
    let shown_session = w.session.clone().or_else(|| sessions.first().and_then(|r| r["session_id"].as_str().map(str::to_owned)));
    let _ = write!(
        page,
        "<p id=\"scope\">{total_events} events in {} session{} from {} to {} (UTC){}.</p>",
        sessions.len(),
        if sessions.len() == 1 { "" } else { "s" },
        crate::store::read::rfc3339(first),
        crate::store::read::rfc3339(last),
        match w.since_ns {
            Some(ns) => format!(", the window starting {}", crate::store::read::rfc3339(ns)),
            None => String::new(),
        }
    );
    let _ = write!(
        page,
        "<p class=\"kpi\"><span id=\"kpi-events\" data-value=\"{total_events}\"><b>{total_events}</b> events</span>\
         <span id=\"kpi-violations\" data-value=\"{}\"><b>{}</b> threshold violations</span>\
         <span id=\"kpi-cache\" data-value=\"{}\">cache hit ratio <b>{:.1}%</b> ({} hits, {} misses)</span></p>",
        p.violations,
        p.violations,
        stats.cache_stats.hit_ratio,
        stats.cache_stats.hit_ratio * 100.0,
        stats.cache_stats.hits,
        stats.cache_stats.misses
    );

    page.push_str("<h2>Latency</h2>");
    let row = |label: &str, s: &crate::store::stats::Summary| LatencyRow {
        label: label.to_owned(),
        p50: s.p50_ms,
        p95: s.p95_ms,
        p99: s.p99_ms,
        count: s.count,
    };
    let ev_rows: Vec<LatencyRow> =
        stats.events.iter().filter(|(_, e)| e.total_time.count > 0).map(|(k, e)| row(k, &e.total_time)).collect();
    page.push_str(&latency_chart("latency-events", "hook.total per event type (whole invocation, from process start)", &ev_rows));
    let pl_rows: Vec<LatencyRow> = stats.plugins.iter().filter(|(_, p)| p.time.count > 0).map(|(k, p)| row(k, &p.time)).collect();
    page.push_str(&latency_chart("latency-plugins", "Plugin call time (excluding cache hits)", &pl_rows));

    page.push_str("<h2>Timeline</h2>");
    // One session at a time: the one asked for, else the latest.
    match (&w.session, &shown_session) {
        (Some(_), _) => {}
        (None, Some(id)) if sessions.len() > 1 => {
            let _ = write!(
                page,
                "<p>Session <code>{}</code>, the latest of {}; the list below names the others and the command for each.</p>",
                esc(&id.chars().take(8).collect::<String>()),
                sessions.len()
            );
        }
        _ => {}
    }
    let timeline_window = Window { session: shown_session.clone(), ..w.clone() };
    page.push_str(&timeline(source, &timeline_window)?);
    if sessions.len() > 1 || w.session.is_none() {
        page.push_str("<h2>Sessions</h2>");
        page.push_str(&session_list(&sessions, shown_session.as_deref()));
    }

    page.push_str("<h2>Decisions</h2>");
    let decided = source.rows(Rows::Decisions, w)?;
    if decided.is_empty() {
        page.push_str("<p>No decisions in this window.</p>");
    } else {
        page.push_str(
            "<div class=\"wide\"><table id=\"decisions\"><tr><th>#</th><th>time</th><th>event</th><th>tool</th><th>decision</th><th>reason</th></tr>",
        );
        for r in &decided {
            let answer: serde_json::Value = r["answer"].as_str().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default();
            let reason = answer["hookSpecificOutput"]["permissionDecisionReason"].as_str().or(answer["reason"].as_str()).unwrap_or("");
            let d = r["decision"].as_str().unwrap_or("");
            let _ = write!(
                page,
                "<tr data-decision=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                esc(d),
                r["id"],
                crate::store::read::rfc3339(r["received_at_ns"].as_i64().unwrap_or(0)),
                esc(r["hook_event_name"].as_str().unwrap_or("")),
                esc(r["tool_name"].as_str().unwrap_or("")),
                esc(d),
                esc(d),
                esc(reason)
            );
        }
        page.push_str("</table></div>");
    }

    page.push_str("<h2>Threshold violations</h2>");
    if p.recent_violations.is_empty() {
        page.push_str("<p>None.</p>");
    } else {
        page.push_str(
            "<div class=\"wide\"><table id=\"violations\"><tr><th>event</th><th>time</th><th>metric</th><th>subject</th><th>value</th><th>limit</th></tr>",
        );
        for v in &p.recent_violations {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
                v.event_id,
                esc(&v.at),
                esc(&v.metric),
                esc(&v.subject),
                v.value,
                v.threshold
            );
        }
        page.push_str("</table></div>");
    }

    page.push_str("<h2>Cache</h2>");
    page.push_str(&cache_chart(source, w)?);
    let _ = writeln!(
        page,
        "<p class=\"axis\">Generated by chronicle {} at {}.</p></body></html>",
        env!("CARGO_PKG_VERSION"),
        crate::store::read::rfc3339(crate::clock::unix_ns())
    );
    Ok(page)
}

/// A comparison of two sample sets as one self-contained HTML page: per scenario, every sample
/// of the baseline and the candidate as a dot on a shared logarithmic time axis, medians
/// marked, with the verdict. (`chronicle regress compare|ab --html FILE`.)
pub fn comparison_html(
    report: &chronicle_regress::Report,
    base: &chronicle_regress::SampleSet,
    cand: &chronicle_regress::SampleSet,
) -> String {
    let mut page = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Chronicle regression comparison</title><style>\
         body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222} figure{margin:14px 0} figcaption{font-weight:600}\
         .axis{font-size:11px;fill:#555} .regressed{color:#c0392b} .improved{color:#1e8449}\
         </style></head><body><h1>Regression comparison</h1>",
    );
    let _ = write!(
        page,
        "<p id=\"verdict\" data-regressed=\"{}\" data-inconclusive=\"{}\">{} — alpha {} (Holm), noise band {} %. Blue: baseline, orange: candidate; bars: medians.</p>",
        report.regressed,
        report.inconclusive,
        if report.regressed {
            "<b class=\"regressed\">regression</b>"
        } else if report.inconclusive {
            "<b>inconclusive</b> (the calibration workload moved: the machine was in another state)"
        } else {
            "<b>no regression</b>"
        },
        report.alpha,
        report.noise_band_pct
    );
    let mut rng = chronicle_regress::stats::Rng::new(1);
    for r in &report.scenarios {
        let (Some(b), Some(c)) = (base.values(&r.name), cand.values(&r.name)) else { continue };
        let all: Vec<f64> = b.iter().chain(c.iter()).copied().filter(|v| *v > 0.0).collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min).ln();
        let hi = all.iter().copied().fold(0.0_f64, f64::max).ln().max(lo + 1e-9);
        let (left, width) = (90.0, 760.0);
        let x = |v: f64| left + (v.ln() - lo) / (hi - lo) * width;
        let _ = write!(
            page,
            "<figure><figcaption>{} — <span class=\"{}\">{:?}</span>, change {:+.1} % (99% CI {:+.1} … {:+.1} %), p = {:.4}</figcaption>\
             <svg class=\"scenario\" data-scenario=\"{}\" width=\"{}\" height=\"110\" viewBox=\"0 0 {} 110\">\
             <text x=\"4\" y=\"34\" class=\"axis\">baseline</text><text x=\"4\" y=\"74\" class=\"axis\">candidate</text>",
            esc(&r.name),
            format!("{:?}", r.verdict).to_lowercase(),
            r.verdict,
            r.change_pct,
            r.ci_low_pct,
            r.ci_high_pct,
            r.p_value,
            esc(&r.name),
            left + width + 20.0,
            left + width + 20.0
        );
        for (vals, y, color, class) in [(&b, 30.0, "#4e79a7", "base"), (&c, 70.0, "#f28e2b", "cand")] {
            for v in vals.iter().filter(|v| **v > 0.0) {
                let jitter = (rng.uniform() - 0.5) * 16.0;
                let _ = write!(page, "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\" fill-opacity=\"0.55\" data-ns=\"{v}\"/>", x(*v), y + jitter);
            }
            let m = chronicle_regress::stats::median(vals);
            if m > 0.0 {
                let _ = write!(
                    page,
                    "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#111\" stroke-width=\"2\" data-median-ns=\"{m}\"/>",
                    x(m),
                    y - 14.0,
                    y + 14.0
                );
            }
        }
        let _ = write!(
            page,
            "<text x=\"{left}\" y=\"104\" class=\"axis\">{:.3} ms</text><text x=\"{}\" y=\"104\" class=\"axis\" text-anchor=\"end\">{:.3} ms (log scale)</text></svg></figure>",
            lo.exp() / 1e6,
            left + width,
            hi.exp() / 1e6
        );
    }
    page.push_str("</body></html>\n");
    page
}
