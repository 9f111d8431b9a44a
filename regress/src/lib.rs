//! Performance-regression detection that does not cry wolf on noisy machines.
//!
//! Pure statistics and decision logic: samples in, verdicts out, no I/O (the sample-file
//! formats live in [`format`](mod@format), the only module that parses text). The method:
//!
//! 1. Work on log latencies, so effects are ratios and heavy right tails shrink.
//! 2. **Paired** samples (baseline and candidate measured alternately, same `iteration`):
//!    Tukey's biweight M-estimate of the per-pair log ratios, tested against 0 with its
//!    sandwich standard error and Student's t ([`stats::biweight_test`]); effect =
//!    Hodges–Lehmann estimate (median of Walsh averages). Interleaving cancels machine drift,
//!    which otherwise dominates. The biweight gives little weight to pairs whose samples fell
//!    into different modes of a bimodal latency and none to rare outliers; measured over 2000
//!    trials per cell it reaches 96.5–96.7 % power at +10 %, n = 100, where a 10 %-trimmed mean
//!    test reached 94.5–95.7 % and Wilcoxon 94.2–96.1 % (see regress/README.md).
//! 3. **Unpaired** samples: Mann–Whitney U (normal approximation with continuity correction;
//!    statrs' exact mode is wrong for `len(x) <= len(y)`); effect = Hodges–Lehmann shift (median
//!    of all pairwise log differences). Rank tests keep their power on rare 10× outliers where
//!    mean-based tests lose it.
//! 4. **Calibration**: when both unpaired sides carry the reserved scenario `calibration` (a
//!    reference workload measured in the same run), the effect is the difference in differences
//!    of log medians (scenario change minus calibration change), cancelling machine speed drift
//!    between runs; its interval and p-value come from a bootstrap over all four groups, so the
//!    calibration's own sampling noise is part of the verdict.
//! 5. Confidence interval of the effect by a seeded bootstrap (deterministic output).
//! 6. Verdict: `regressed` only when the test is significant after Holm's correction across
//!    scenarios **and** the estimated change exceeds the noise band; `improved` symmetrically;
//!    `insufficient` below [`Settings::min_samples`]; otherwise `unchanged`. (Requiring the whole
//!    99 % interval above the band was measured to cost most of the power at +10 %, n = 100.)
//!
//! The knobs and their trade-offs are documented on [`Settings`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod baseline;
pub mod format;
pub mod quality;
pub mod stats;

use serde::Serialize;

pub use format::{ParseError, SampleSet};

/// Tuning constant of the paired biweight test, in normalised MADs of the log ratios: pairs
/// farther than this from the estimate weigh nothing. Measured over 10 000 trials a cell
/// (regress/README.md): 4.685 (95 % efficiency at the normal) raises false alarms at n = 10 to
/// 1.1–1.3 %; 6 keeps them ≤ 0.8 % and gains power on both shapes; 7 gains nothing more.
pub const PAIRED_TUNING: f64 = 6.0;

/// Name of the reserved scenario holding the calibration workload.
pub const CALIBRATION: &str = "calibration";

/// Decision knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Family-wise significance level across all scenarios of a comparison (Holm-corrected).
    /// Lower means fewer false alarms and less power. Default 0.01.
    pub alpha: f64,
    /// Changes whose confidence interval does not clear this band (in percent) are `unchanged`,
    /// however significant. It absorbs what interleaving or calibration cannot cancel: the
    /// residual drift between runs. Larger means fewer false alarms and blindness to smaller
    /// regressions. Default: 3 % for paired data, 25 % for unpaired (stored baselines: on 48
    /// real runs of one build in two series, steady pairs judged with 10 % raised 2.8-4.1 %
    /// false alarms at n = 30, with 20 % 0.5-2.3 %, with 25 % 0.0-1.8 %; regress/README.md).
    pub noise_band_pct: Option<f64>,
    /// Confidence level of the interval. Default 0.99.
    pub confidence: f64,
    /// Bootstrap resamples for the interval. Default 2000.
    pub resamples: usize,
    /// Fewer samples than this on either side gives `insufficient`. Default 10.
    pub min_samples: usize,
    /// Divide by the calibration scenario when both sides have one. Default true.
    pub calibrate: bool,
    /// A calibrated stored comparison decides only when the calibration's median moved less
    /// than this (percent) between the two runs; otherwise its scenarios are `inconclusive`.
    /// On 30 real runs of one build (regress/README.md) no stored detector could both keep
    /// false alarms ≤ 2 % and catch +50 % across all pairs: whole runs were 2–5× slower while
    /// the machine was busy, and `cat` slowed less than a two-process hook. Between runs whose
    /// calibration agreed within 5 %, comparing was reliable. `None` always decides.
    /// Default 5.
    pub steady_pct: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            alpha: 0.01,
            noise_band_pct: None,
            confidence: 0.99,
            resamples: 2000,
            min_samples: 10,
            calibrate: true,
            steady_pct: Some(5.0),
        }
    }
}

impl Settings {
    pub fn noise_band(&self, paired: bool) -> f64 {
        self.noise_band_pct.unwrap_or(if paired { 3.0 } else { 25.0 })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Regressed,
    Improved,
    Unchanged,
    Insufficient,
    /// A calibrated stored comparison between runs of a machine in different states (see
    /// [`Settings::steady_pct`]): it cannot tell a slower build from a slower machine.
    Inconclusive,
}

/// One scenario's comparison. `--json` prints these field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub baseline_median_ns: f64,
    pub candidate_median_ns: f64,
    pub n_baseline: usize,
    pub n_candidate: usize,
    pub paired: bool,
    pub calibrated: bool,
    pub change_pct: f64,
    pub ci_low_pct: f64,
    pub ci_high_pct: f64,
    pub p_value: f64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub regressed: bool,
    /// Some scenario is `inconclusive`: measure again (or interleave) before trusting "no
    /// regression".
    pub inconclusive: bool,
    /// How far the calibration workload's median moved from baseline to candidate (percent),
    /// when both sides carry one.
    pub calibration_change_pct: Option<f64>,
    pub noise_band_pct: f64,
    pub alpha: f64,
    pub scenarios: Vec<ScenarioResult>,
}

fn pct(log_ratio: f64) -> f64 {
    (log_ratio.exp() - 1.0) * 100.0
}

/// Compares every scenario present on both sides (except `calibration`).
pub fn compare(baseline: &SampleSet, candidate: &SampleSet, settings: &Settings) -> Report {
    let has_calibration = |s: &SampleSet| s.values(CALIBRATION).is_some_and(|v| v.len() >= settings.min_samples);
    let calibrated = settings.calibrate && has_calibration(baseline) && has_calibration(candidate);
    let calibration_change_pct = (has_calibration(baseline) && has_calibration(candidate)).then(|| {
        let median_of = |s: &SampleSet| stats::median(&s.values(CALIBRATION).unwrap_or_default());
        (median_of(candidate) / median_of(baseline) - 1.0) * 100.0
    });
    let steady = match (calibration_change_pct, settings.steady_pct) {
        (Some(moved), Some(limit)) if calibrated => moved.abs() <= limit,
        _ => true,
    };

    let mut rows: Vec<(ScenarioResult, f64)> = Vec::new();
    for name in baseline.names() {
        if name == CALIBRATION {
            continue;
        }
        let (Some(b), Some(c)) = (baseline.values(name), candidate.values(name)) else { continue };
        let logs = |v: &[f64]| -> Vec<f64> { v.iter().filter(|x| x.is_finite() && **x > 0.0).map(|x| x.ln()).collect() };
        let (lb, lc) = (logs(&b), logs(&c));
        let pairs = baseline.paired_with(candidate, name);
        let paired = pairs.len() >= settings.min_samples;
        let mut r = ScenarioResult {
            name: name.to_owned(),
            baseline_median_ns: stats::median(&b),
            candidate_median_ns: stats::median(&c),
            n_baseline: lb.len(),
            n_candidate: lc.len(),
            paired,
            calibrated,
            change_pct: 0.0,
            ci_low_pct: 0.0,
            ci_high_pct: 0.0,
            p_value: 1.0,
            verdict: Verdict::Insufficient,
        };
        if lb.len() < settings.min_samples || lc.len() < settings.min_samples {
            rows.push((r, 1.0));
            continue;
        }
        let seed = stats::seed_from(name);
        let (effect, (lo, hi), p) = if paired {
            let d: Vec<f64> = pairs.iter().map(|(x, y)| (y / x).ln()).filter(|v| v.is_finite()).collect();
            let effect = stats::hodges_lehmann_one(&d);
            let ci = stats::bootstrap_ci(&d, &[], settings.resamples, settings.confidence, seed, |a, _| stats::median(a));
            (effect, ci, stats::biweight_test(&d, PAIRED_TUNING).1)
        } else if calibrated {
            let cal_b = logs(&baseline.values(CALIBRATION).unwrap_or_default());
            let cal_c = logs(&candidate.values(CALIBRATION).unwrap_or_default());
            stats::bootstrap_did(&lb, &lc, &cal_b, &cal_c, settings.resamples, settings.confidence, seed)
        } else {
            let effect = stats::hodges_lehmann_two(&lb, &lc);
            let ci =
                stats::bootstrap_ci(&lb, &lc, settings.resamples, settings.confidence, seed, |a, b| stats::median(b) - stats::median(a));
            (effect, ci, stats::mann_whitney(&lb, &lc))
        };
        r.change_pct = pct(effect);
        r.ci_low_pct = pct(lo);
        r.ci_high_pct = pct(hi);
        r.p_value = p;
        if !paired && !steady {
            r.verdict = Verdict::Inconclusive;
        }
        rows.push((r, p));
    }

    // Holm: the k-th smallest p-value is tested at alpha / (m - k).
    let mut order: Vec<usize> = (0..rows.len())
        .filter(|i| {
            let r = &rows[*i].0;
            r.n_baseline >= settings.min_samples && r.n_candidate >= settings.min_samples && r.verdict != Verdict::Inconclusive
        })
        .collect();
    order.sort_by(|a, b| rows[*a].1.total_cmp(&rows[*b].1));
    let m = order.len();
    let mut still_rejecting = true;
    for (k, &i) in order.iter().enumerate() {
        let threshold = settings.alpha / (m.saturating_sub(k)).max(1) as f64;
        let significant = still_rejecting && rows[i].1 <= threshold;
        still_rejecting = significant;
        let band = settings.noise_band(rows[i].0.paired);
        let r = &mut rows[i].0;
        r.verdict = if significant && r.change_pct > band {
            Verdict::Regressed
        } else if significant && r.change_pct < -band {
            Verdict::Improved
        } else {
            Verdict::Unchanged
        };
    }
    let scenarios: Vec<ScenarioResult> = rows.into_iter().map(|(r, _)| r).collect();
    let any_paired = scenarios.iter().any(|s| s.paired);
    Report {
        regressed: scenarios.iter().any(|s| s.verdict == Verdict::Regressed),
        inconclusive: scenarios.iter().any(|s| s.verdict == Verdict::Inconclusive),
        calibration_change_pct,
        noise_band_pct: settings.noise_band(any_paired),
        alpha: settings.alpha,
        scenarios,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Rng;

    fn lognormal(rng: &mut Rng, n: usize, median: f64, sigma: f64) -> Vec<f64> {
        (0..n).map(|_| median * (sigma * rng.normal()).exp()).collect()
    }

    fn set(pairs: &[(&str, Vec<f64>)]) -> SampleSet {
        let mut s = SampleSet::default();
        for (name, v) in pairs {
            for (i, x) in v.iter().enumerate() {
                s.push(name, *x, Some(i as u64));
            }
        }
        s
    }

    #[test]
    fn a_clear_regression_is_found_and_no_change_is_not() {
        let mut rng = Rng::new(7);
        let base = lognormal(&mut rng, 100, 1e6, 0.2);
        let same = lognormal(&mut rng, 100, 1e6, 0.2);
        let slow = lognormal(&mut rng, 100, 1.3e6, 0.2);
        let r = compare(&set(&[("hook", base.clone())]), &set(&[("hook", same)]), &Settings::default());
        assert_eq!(r.scenarios[0].verdict, Verdict::Unchanged, "{r:?}");
        let r = compare(&set(&[("hook", base)]), &set(&[("hook", slow)]), &Settings::default());
        assert_eq!(r.scenarios[0].verdict, Verdict::Regressed, "{r:?}");
        assert!(r.regressed);
        assert!((r.scenarios[0].change_pct - 30.0).abs() < 10.0);
        assert!(r.scenarios[0].ci_low_pct < r.scenarios[0].change_pct && r.scenarios[0].change_pct < r.scenarios[0].ci_high_pct);
    }

    #[test]
    fn too_few_samples_are_insufficient() {
        let r = compare(&set(&[("x", vec![1.0; 5])]), &set(&[("x", vec![2.0; 5])]), &Settings::default());
        assert_eq!(r.scenarios[0].verdict, Verdict::Insufficient);
        assert!(!r.regressed);
    }

    #[test]
    fn calibration_cancels_a_uniformly_slower_machine() {
        let mut rng = Rng::new(11);
        let b = set(&[("hook", lognormal(&mut rng, 60, 1e6, 0.1)), (CALIBRATION, lognormal(&mut rng, 60, 5e5, 0.1))]);
        // The whole machine is 40 % slower in the candidate run; the code did not change.
        let c = SampleSet::unpaired(&[("hook", lognormal(&mut rng, 60, 1.4e6, 0.1)), (CALIBRATION, lognormal(&mut rng, 60, 7e5, 0.1))]);
        let always = Settings { steady_pct: None, ..Settings::default() };
        let r = compare(&b, &c, &always);
        assert_eq!(r.scenarios[0].verdict, Verdict::Unchanged, "{r:?}");
        assert!(r.scenarios[0].calibrated);
        let raw = compare(&b, &c, &Settings { calibrate: false, ..always });
        assert_eq!(raw.scenarios[0].verdict, Verdict::Regressed);
    }

    #[test]
    fn a_stored_comparison_across_machine_states_is_inconclusive_not_unchanged() {
        let mut rng = Rng::new(12);
        let b = set(&[("hook", lognormal(&mut rng, 60, 1e6, 0.1)), (CALIBRATION, lognormal(&mut rng, 60, 5e5, 0.1))]);
        // The calibration moved 40 %: whatever the hook did, a stored comparison cannot tell why.
        for hook in [1.0e6, 1.4e6, 2.0e6] {
            let c = SampleSet::unpaired(&[("hook", lognormal(&mut rng, 60, hook, 0.1)), (CALIBRATION, lognormal(&mut rng, 60, 7e5, 0.1))]);
            let r = compare(&b, &c, &Settings::default());
            assert_eq!(r.scenarios[0].verdict, Verdict::Inconclusive, "{r:?}");
            assert!(r.inconclusive && !r.regressed);
            assert!((r.calibration_change_pct.unwrap() - 40.0).abs() < 8.0, "{r:?}");
        }
        // The same machine state (calibration within 5 %): +50 % is a regression, +0 % is not.
        let steady_cal = || lognormal(&mut Rng::new(99), 60, 5e5, 0.1);
        let b = set(&[("hook", lognormal(&mut rng, 60, 1e6, 0.1)), (CALIBRATION, steady_cal())]);
        for (hook, verdict) in [(1.5e6, Verdict::Regressed), (1.0e6, Verdict::Unchanged)] {
            let c = SampleSet::unpaired(&[("hook", lognormal(&mut rng, 60, hook, 0.1)), (CALIBRATION, steady_cal())]);
            let r = compare(&b, &c, &Settings::default());
            assert_eq!(r.scenarios[0].verdict, verdict, "{r:?}");
            assert!(!r.inconclusive);
        }
    }

    #[test]
    fn holm_correction_limits_false_alarms_across_many_scenarios() {
        let mut false_alarms = 0;
        for trial in 0..50 {
            let mut rng = Rng::new(1000 + trial);
            let names: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
            let b = SampleSet::unpaired(&names.iter().map(|n| (n.as_str(), lognormal(&mut rng, 30, 1e6, 0.25))).collect::<Vec<_>>());
            let c = SampleSet::unpaired(&names.iter().map(|n| (n.as_str(), lognormal(&mut rng, 30, 1e6, 0.25))).collect::<Vec<_>>());
            if compare(&b, &c, &Settings { noise_band_pct: Some(0.0), resamples: 100, ..Settings::default() }).regressed {
                false_alarms += 1;
            }
        }
        assert!(false_alarms <= 2, "{false_alarms} of 50");
    }
}
