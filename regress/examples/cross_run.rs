//! Stored-baseline detectors on real samples: runs of one unchanged build measured minutes to
//! hours apart (`chronicle bench --out`, one file per run). Every ordered pair of runs is a
//! baseline and a candidate; the candidate's hook scenarios are scaled by +0/10/20/50 % (the
//! calibration workload is left alone) and each detector decides, as the gate would, over all
//! hook scenarios at once. Prints false alarms (+0 %) and power per detector and n.
//!
//! `cargo run --release -p chronicle-regress --example cross_run DIR` (with
//! `CALIBRATION_AS=reference.pipe`: another reference workload of the runs as the calibration)
use std::path::PathBuf;

use chronicle_regress::format::SampleSet;
use chronicle_regress::{compare, stats, Settings, CALIBRATION};

/// A detector: does the candidate regress against the baseline?
type Detector = Box<dyn Fn(&SampleSet, &SampleSet) -> bool>;

fn first_n(s: &SampleSet, n: usize) -> SampleSet {
    let mut out = SampleSet::default();
    for name in s.names().map(str::to_owned).collect::<Vec<_>>() {
        for v in s.values(&name).unwrap_or_default().into_iter().take(n) {
            out.push(&name, v, None);
        }
    }
    out
}

fn scaled(s: &SampleSet, factor: f64) -> SampleSet {
    let mut out = SampleSet::default();
    for name in s.names().map(str::to_owned).collect::<Vec<_>>() {
        let f = if name.starts_with("hook.") { factor } else { 1.0 };
        for v in s.values(&name).unwrap_or_default() {
            out.push(&name, v * f, None);
        }
    }
    out
}

/// The same samples with `other` as the calibration scenario (and without the original).
fn as_calibration(s: &SampleSet, other: &str) -> SampleSet {
    let mut out = SampleSet::default();
    for name in s.names().filter(|n| *n != CALIBRATION).map(str::to_owned).collect::<Vec<_>>() {
        let target = if name == other { CALIBRATION } else { name.as_str() };
        for v in s.values(&name).unwrap_or_default() {
            out.push(target, v, None);
        }
    }
    out
}

fn hooks(s: &SampleSet) -> Vec<String> {
    s.names().filter(|n| n.starts_with("hook.")).map(str::to_owned).collect()
}

/// Median ratio of each hook scenario (divided by the calibration's when `calibrated`) above
/// `band`: the simple comparison the issue proposes.
fn median_band(band: f64, calibrated: bool) -> Detector {
    Box::new(move |b: &SampleSet, c: &SampleSet| {
        let cal = if calibrated {
            let (Some(cb), Some(cc)) = (b.values(CALIBRATION), c.values(CALIBRATION)) else { return false };
            stats::median(&cc) / stats::median(&cb)
        } else {
            1.0
        };
        hooks(b).iter().any(|name| {
            let (Some(vb), Some(vc)) = (b.values(name), c.values(name)) else { return false };
            stats::median(&vc) / stats::median(&vb) / cal > 1.0 + band / 100.0
        })
    })
}

/// The same on a low quantile: the fastest samples of a run are the ones a busy machine
/// disturbed least.
fn quantile_band(q: f64, band: f64, calibrated: bool) -> Detector {
    Box::new(move |b: &SampleSet, c: &SampleSet| {
        let at = |v: Vec<f64>| {
            let mut v = v;
            v.sort_by(f64::total_cmp);
            // Nearest rank; q = 0 is the minimum.
            let rank = ((q / 100.0) * v.len() as f64).ceil() as usize;
            v[rank.clamp(1, v.len()) - 1]
        };
        let cal = if calibrated {
            let (Some(cb), Some(cc)) = (b.values(CALIBRATION), c.values(CALIBRATION)) else { return false };
            at(cc) / at(cb)
        } else {
            1.0
        };
        hooks(b).iter().any(|name| {
            let (Some(vb), Some(vc)) = (b.values(name), c.values(name)) else { return false };
            at(vc) / at(vb) / cal > 1.0 + band / 100.0
        })
    })
}

/// The median ratio, but only between runs whose calibration workload agrees within `steady`
/// (the machine in the same state); otherwise no verdict (counted as no alarm).
fn steady_median(band: f64, steady: f64) -> Detector {
    Box::new(move |b: &SampleSet, c: &SampleSet| {
        let (Some(cb), Some(cc)) = (b.values(CALIBRATION), c.values(CALIBRATION)) else { return false };
        let cal = stats::median(&cc) / stats::median(&cb);
        if (cal - 1.0).abs() > steady / 100.0 {
            return false;
        }
        median_band(band, false)(b, c)
    })
}

/// `compare` as `regress compare` runs it, with this band; `steady`: decide only when the
/// calibration moved less than that many percent (otherwise `inconclusive`, no alarm).
fn tested(band: f64, calibrate: bool, steady: Option<f64>) -> Detector {
    Box::new(move |b: &SampleSet, c: &SampleSet| {
        let settings = Settings { noise_band_pct: Some(band), calibrate, steady_pct: steady, ..Settings::default() };
        compare(
            &b.filtered(|n| n.starts_with("hook.") || n == CALIBRATION),
            &c.filtered(|n| n.starts_with("hook.") || n == CALIBRATION),
            &settings,
        )
        .regressed
    })
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: cross_run DIR (of chronicle bench --out files)"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("a directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    // CALIBRATION_AS=SCENARIO: judge with another reference workload as the calibration.
    let calibration_as = std::env::var("CALIBRATION_AS").ok();
    let runs: Vec<SampleSet> = files
        .iter()
        .filter_map(|f| SampleSet::parse(&std::fs::read_to_string(f).ok()?).ok())
        .filter(|s| !hooks(s).is_empty())
        .map(|s| match &calibration_as {
            Some(other) => as_calibration(&s, other),
            None => s,
        })
        .collect();
    let pairs: Vec<(usize, usize)> = (0..runs.len()).flat_map(|i| (i + 1..runs.len()).map(move |j| (i, j))).collect();
    println!("{} runs, {} ordered pairs (baseline earlier than candidate)", runs.len(), pairs.len());
    let steady = pairs
        .iter()
        .filter(|(i, j)| {
            let (Some(cb), Some(cc)) = (runs[*i].values(CALIBRATION), runs[*j].values(CALIBRATION)) else { return false };
            (stats::median(&cc) / stats::median(&cb) - 1.0).abs() <= 0.05
        })
        .count();
    println!("pairs whose calibration medians agree within 5 %: {steady}");
    let detectors: Vec<(&str, Detector)> = vec![
        ("calibrated bootstrap, 10 % band (the stored mode until 2026-12-05)", tested(10.0, true, None)),
        ("calibrated bootstrap, 20 % band (the gate's fallback until 2026-12-05)", tested(20.0, true, None)),
        ("calibrated bootstrap, 10 % band, only when calibration moved ≤ 5 %", tested(10.0, true, Some(5.0))),
        ("calibrated bootstrap, 20 % band, only when calibration moved ≤ 5 %", tested(20.0, true, Some(5.0))),
        ("calibrated bootstrap, 25 % band, only when calibration moved ≤ 5 % (the stored mode now)", tested(25.0, true, Some(5.0))),
        ("Mann-Whitney, no calibration, 20 % band", tested(20.0, false, None)),
        ("median ratio > 15 %", median_band(15.0, false)),
        ("median ratio > 20 %", median_band(20.0, false)),
        ("median ratio > 25 %", median_band(25.0, false)),
        ("calibrated median ratio > 15 %", median_band(15.0, true)),
        ("calibrated median ratio > 20 %", median_band(20.0, true)),
        ("calibrated median ratio > 25 %", median_band(25.0, true)),
        ("median ratio > 20 %, only when calibration moved < 5 %", steady_median(20.0, 5.0)),
        ("median ratio > 25 %, only when calibration moved < 5 %", steady_median(25.0, 5.0)),
        ("median ratio > 30 %, only when calibration moved < 5 %", steady_median(30.0, 5.0)),
        ("p10 ratio > 15 %", quantile_band(10.0, 15.0, false)),
        ("p10 ratio > 25 %", quantile_band(10.0, 25.0, false)),
        ("calibrated p10 ratio > 15 %", quantile_band(10.0, 15.0, true)),
        ("calibrated p10 ratio > 25 %", quantile_band(10.0, 25.0, true)),
        ("minimum ratio > 15 %", quantile_band(0.0, 15.0, false)),
        ("minimum ratio > 25 %", quantile_band(0.0, 25.0, false)),
    ];
    println!("| detector | n | +0 % (false alarms) | +10 % | +20 % | +50 % |");
    println!("|---|---|---|---|---|---|");
    for (name, detect) in &detectors {
        for n in [10, 30] {
            let cells: Vec<String> = [0.0, 0.10, 0.20, 0.50]
                .iter()
                .map(|shift| {
                    let hits =
                        pairs.iter().filter(|(i, j)| detect(&first_n(&runs[*i], n), &scaled(&first_n(&runs[*j], n), 1.0 + shift))).count();
                    format!("{:.1} %", 100.0 * hits as f64 / pairs.len().max(1) as f64)
                })
                .collect();
            println!("| {name} | {n} | {} |", cells.join(" | "));
        }
    }
}
