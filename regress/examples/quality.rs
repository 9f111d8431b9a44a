//! Prints the detector-quality table: false alarms and power for n = 10, 30, 100 at
//! +0/5/10/20 %, on both sample shapes, interleaved and against a stored baseline.
//! `cargo run --release -p chronicle-regress --example quality [TRIALS]`
use chronicle_regress::quality::{regressed_rate, Mode, Shape};
use chronicle_regress::Settings;

fn main() {
    let trials: usize = std::env::args().nth(1).and_then(|t| t.parse().ok()).unwrap_or(1000);
    // The synthetic drift is one the calibration tracks to 2 % (not a real machine's: see the
    // cross_run example), so the stored rows are measured as first published: every pair
    // decided, 10 % band.
    let settings = Settings { resamples: 500, steady_pct: None, noise_band_pct: None, ..Settings::default() };
    let stored = Settings { noise_band_pct: Some(10.0), ..settings.clone() };
    println!(
        "trials per cell: {trials}; alpha {}; noise band {} % paired / {} % stored",
        settings.alpha,
        settings.noise_band(true),
        stored.noise_band(false)
    );
    println!("| shape | mode | n | +0 % (false alarms) | +5 % | +10 % | +20 % |");
    println!("|---|---|---|---|---|---|---|");
    for shape in [Shape::LogNormal, Shape::BimodalOutliers] {
        for mode in [Mode::Interleaved, Mode::Stored] {
            for n in [10, 30, 100] {
                let cells: Vec<String> = [0.0, 0.05, 0.10, 0.20]
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        format!(
                            "{:.1} %",
                            100.0
                                * regressed_rate(
                                    shape,
                                    mode,
                                    n,
                                    *s,
                                    trials,
                                    1000 * n as u64 + i as u64,
                                    if mode == Mode::Stored { &stored } else { &settings }
                                )
                        )
                    })
                    .collect();
                println!("| {shape:?} | {mode:?} | {n} | {} |", cells.join(" | "));
            }
        }
    }
}
