//! Label PDF for a batch: COUNT restricted-delivery labels on A4 sheets of ten, with the
//! IPAex Gothic subset embedded and a Code 128 barcode each. scripts/bench prints it beside
//! Python's fpdf2 drawing the same labels with the same font.
//!
//! Usage: cargo bench --bench labels -- [COUNT] [OUT.pdf]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kofu::pdf::{self, Font, MailLabel};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let count: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let cfg = kofu::config::DeliveryConfig::default();
    let started = Instant::now();
    let font = Font::load(&cfg.font).unwrap();
    let font_s = started.elapsed().as_secs_f64();
    let labels: Vec<MailLabel> = (0..count)
        .map(|i| MailLabel {
            postal_code: "1000001".into(),
            address: format!(
                "東京都千代田区千代田一丁目{}番{}号 千代田ハイツ{}号室",
                i % 9 + 1,
                i % 30 + 1,
                100 + i % 50
            ),
            name: format!("髙橋 﨑子{i}"),
            reference: format!("{:013}", 1_000_000_000_000u64 + i as u64 * 7919),
        })
        .collect();
    let started = Instant::now();
    let bytes = pdf::label_sheets(&font, &cfg.office(), &labels).unwrap();
    let secs = started.elapsed().as_secs_f64();
    if let Some(out) = args.get(1) {
        std::fs::write(out, &bytes).unwrap();
    }
    println!(
        "kofu_labels count={count} seconds={secs:.3} font_load_seconds={font_s:.3} bytes={}",
        bytes.len()
    );
}
