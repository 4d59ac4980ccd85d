//! `timeline.svg` (phones by state over time, admin steps marked) and `report.html` (one
//! self-contained file: summary, the plot, expectations, locked phones with their explanation).
//! Both are plain text built here: a few polylines and a table need no plotting or template
//! engine (docs/decisions.md).

use std::fmt::Write as _;

use crate::driver::{Counts, RunOutput};
use crate::report::{ExpectResult, hms, xml_text};
use crate::scenario::Scenario;

const W: f64 = 900.0;
const H: f64 = 320.0;
const PAD_L: f64 = 60.0;
const PAD_R: f64 = 20.0;
const PAD_T: f64 = 20.0;
const PAD_B: f64 = 40.0;

/// The state series as an SVG chart.
pub fn timeline_svg(run: &RunOutput) -> String {
    let total = run.final_states.len().max(1) as f64;
    let t_end = run.end_ms.max(1) as f64;
    let x = |t: u64| PAD_L + (t as f64 / t_end) * (W - PAD_L - PAD_R);
    let y = |n: u64| PAD_T + (1.0 - n as f64 / total) * (H - PAD_T - PAD_B);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>"##
    );
    // Axes and grid.
    for k in 0..=4 {
        let n = (total * f64::from(k) / 4.0).round() as u64;
        let yy = y(n);
        let _ = writeln!(
            s,
            r##"<line x1="{PAD_L}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{n}</text>"##,
            W - PAD_R,
            PAD_L - 6.0,
            yy + 4.0
        );
    }
    for k in 0..=6 {
        let t = (t_end * f64::from(k) / 6.0) as u64;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(t),
            H - PAD_B + 16.0,
            hms(t)
        );
    }
    // Admin steps.
    for (i, st) in run.steps.iter().enumerate() {
        let xx = x(st.at_ms);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{PAD_T}" x2="{xx:.1}" y2="{:.1}" stroke="#888" stroke-dasharray="3,3"><title>{}</title></line><text x="{:.1}" y="{:.1}" fill="#555">{}</text>"##,
            H - PAD_B,
            xml_text(&format!("{} at {}", st.label, hms(st.at_ms))),
            xx + 2.0,
            PAD_T + 10.0 + (i % 4) as f64 * 11.0,
            i + 1
        );
    }
    type Line = (&'static str, &'static str, fn(&Counts) -> u64);
    let series: [Line; 4] = [
        ("registered", "#2a7", |c| c.registered),
        ("trusted", "#27c", |c| c.trusted),
        ("locked", "#d33", |c| c.locked),
        ("off", "#999", |c| c.off),
    ];
    for (li, (name, color, f)) in series.iter().enumerate() {
        let pts: Vec<String> = run
            .series
            .iter()
            .map(|(t, c)| format!("{:.1},{:.1}", x(*t), y(f(c))))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        let lx = PAD_L + 10.0 + li as f64 * 110.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="3" fill="{color}"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
            H - 12.0,
            lx + 16.0,
            H - 8.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The self-contained HTML report.
pub fn report_html(
    sc: &Scenario,
    run: &RunOutput,
    results: &[ExpectResult],
    summary_text: &str,
) -> String {
    let mut h = String::new();
    let failed = results.iter().filter(|r| !r.passed).count();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>itlsim: {}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}\
         .pass{{color:#176f2c}} .fail{{color:#b00}} pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}} details{{margin:4px 0}}</style></head><body>\n",
        xml_text(&sc.name)
    );
    let _ = writeln!(h, "<h1>{}</h1>", xml_text(&sc.name));
    if !sc.description.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", xml_text(&sc.description));
    }
    let _ = writeln!(
        h,
        "<p>Source: {} &middot; seed {} &middot; {} phones &middot; {} of virtual time</p>",
        xml_text(&sc.source),
        sc.seed,
        run.final_states.len(),
        hms(run.end_ms)
    );
    let _ = writeln!(
        h,
        "<h2>Expectations: <span class=\"{}\">{} passed, {} failed</span></h2><table><tr><th></th><th>expectation</th><th>wanted</th><th>got</th><th>when</th></tr>",
        if failed == 0 { "pass" } else { "fail" },
        results.len() - failed,
        failed
    );
    for r in results {
        let _ = writeln!(
            h,
            "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{} of {}</td><td>{}</td></tr>",
            if r.passed { "pass" } else { "fail" },
            if r.passed { "PASS" } else { "FAIL" },
            xml_text(&r.name),
            xml_text(&r.wanted),
            r.actual,
            r.selected,
            xml_text(&r.at)
        );
    }
    h.push_str("</table>\n<h2>Phones over time</h2>\n");
    h.push_str(&timeline_svg(run));
    let _ = writeln!(h, "<h2>Summary</h2><pre>{}</pre>", xml_text(summary_text));
    // Locked phones, grouped by reason, first 50 per reason with their decision chain.
    let mut by_reason: std::collections::BTreeMap<&str, Vec<usize>> =
        std::collections::BTreeMap::new();
    for (i, s) in run.final_states.iter().enumerate() {
        if let Some(r) = s.locked {
            by_reason.entry(r.code()).or_default().push(i);
        }
    }
    let _ = writeln!(
        h,
        "<h2>Locked phones ({})</h2>",
        by_reason.values().map(Vec::len).sum::<usize>()
    );
    for (reason, phones) in &by_reason {
        let _ = writeln!(h, "<h3>{} — {} phones</h3>", xml_text(reason), phones.len());
        for &i in phones.iter().take(50) {
            let p = &run.phones[i].phone;
            let fam = p.model().caps.family;
            let when = run.locked_at[i].map(hms).unwrap_or_default();
            let _ = writeln!(
                h,
                "<details><summary>SEP{} ({} {}) locked at {}</summary><pre>",
                p.mac(),
                fam.as_str(),
                p.model().name,
                when
            );
            for e in p.status_log().iter() {
                let _ = writeln!(
                    h,
                    "{:>8}  {}",
                    hms(u64::from(e.at_s) * 1000),
                    xml_text(&e.msg.text(fam, p.mac()))
                );
            }
            h.push('\n');
            for t in p.trace() {
                let _ = writeln!(h, "{}", xml_text(&t.to_string()));
            }
            h.push_str("</pre></details>\n");
        }
        if phones.len() > 50 {
            let _ = writeln!(
                h,
                "<p>… and {} more (see phones.ndjson)</p>",
                phones.len() - 50
            );
        }
    }
    h.push_str("</body></html>\n");
    h
}
