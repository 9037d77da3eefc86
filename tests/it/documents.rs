//! Delivery documents rendered as a print shop would see them: pdftoppm renders every page,
//! pdftotext finds the 〒 postal code, the name with 様 and the 本人限定受取 marking, zbarimg
//! reads the barcode back, and pdffonts shows the Japanese font embedded as a subset.

use crate::common::*;
use kofu::pdf::{self, CounterNotice, Font, MailLabel, Office, PinMailer};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn font() -> Font {
    Font::load(&kofu::config::DeliveryConfig::default().font).unwrap()
}

pub fn office() -> Office {
    kofu::config::DeliveryConfig::default().office()
}

fn label(i: usize) -> MailLabel {
    MailLabel {
        postal_code: "1000001".into(),
        address: format!("東京都千代田区千代田一丁目1番{i}号 千代田ハイツ{i}01号室"),
        name: format!("髙橋 﨑子{i}"),
        reference: kofu::card::number::generate().unwrap(),
    }
}

fn text_of(pdf: &Path) -> String {
    let out = run(Command::new("pdftotext")
        .args(["-layout"])
        .arg(pdf)
        .arg("-"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Render every page at `dpi`; returns the PNG files.
fn render(pdf: &Path, dpi: u32) -> Vec<PathBuf> {
    let prefix = pdf.with_extension("");
    let out = run(Command::new("pdftoppm")
        .args(["-png", "-r", &dpi.to_string()])
        .arg(pdf)
        .arg(&prefix));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = pdf.parent().unwrap();
    let stem = prefix.file_name().unwrap().to_string_lossy().into_owned();
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "png")
                && p.file_name().unwrap().to_string_lossy().starts_with(&stem)
        })
        .collect();
    pngs.sort();
    pngs
}

fn barcodes(png: &Path) -> Vec<String> {
    let out = run(Command::new("zbarimg").args(["-q", "--raw"]).arg(png));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn fonts_embedded_as_subset(pdf: &Path) {
    let out = run(Command::new("pdffonts").arg(pdf));
    let listing = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = listing.lines().skip(2).collect();
    assert!(!rows.is_empty(), "no fonts in {listing}");
    for row in rows {
        // name type encoding emb sub uni object-id generation
        let cols: Vec<&str> = row.split_whitespace().collect();
        let n = cols.len();
        assert_eq!(&cols[n - 5..n - 3], &["yes", "yes"], "{listing}");
    }
}

#[test]
fn label_sheets_and_single_labels_print_and_scan() {
    let dir = tempfile::tempdir().unwrap();
    let font = font();
    let labels: Vec<MailLabel> = (1..=12).map(label).collect();
    let sheet = dir.path().join("sheet.pdf");
    write(
        &sheet,
        pdf::label_sheets(&font, &office(), &labels).unwrap(),
    );
    let single = dir.path().join("single.pdf");
    write(
        &single,
        pdf::single_labels(&font, &office(), &labels[..2]).unwrap(),
    );

    let text = text_of(&sheet);
    assert_eq!(text.matches("〒100-0001").count(), 12, "{text}");
    assert_eq!(text.matches("本人限定受取").count(), 12);
    for l in &labels {
        assert!(
            text.contains(&format!("{} 様", l.name)),
            "{} in:\n{text}",
            l.name
        );
    }
    assert!(text.contains("差出人"));
    assert!(text.contains(&office().name));
    assert!(text.contains("〒100-0013"), "return address in:\n{text}");
    fonts_embedded_as_subset(&sheet);
    assert!(
        std::fs::metadata(&sheet).unwrap().len() < 400_000,
        "the font is a subset, not the whole 4 MB"
    );

    let pages = render(&sheet, 300);
    assert_eq!(pages.len(), 2, "twelve labels on two A4 sheets of ten");
    let mut scanned = Vec::new();
    for p in &pages {
        scanned.extend(barcodes(p));
    }
    scanned.sort();
    let mut expected: Vec<String> = labels.iter().map(|l| l.reference.clone()).collect();
    expected.sort();
    assert_eq!(
        scanned, expected,
        "every label's barcode scans as its card number"
    );

    let text = text_of(&single);
    assert_eq!(text.matches("本人限定受取").count(), 2);
    let pages = render(&single, 300);
    assert_eq!(pages.len(), 2, "one label per page");
    assert_eq!(barcodes(&pages[0]), vec![labels[0].reference.clone()]);
}

#[test]
fn pin_mailers_and_counter_notices_print() {
    let dir = tempfile::tempdir().unwrap();
    let font = font();
    let mailers = vec![
        PinMailer {
            postal_code: "1000001".into(),
            address: "東京都千代田区千代田1-1".into(),
            name: "山田 太郎".into(),
            card_number: "1234567890128".into(),
            auth_pin: "2580".into(),
            sign_pin: Some("ABCD2345".into()),
        },
        PinMailer {
            postal_code: "5300001".into(),
            address: "大阪府大阪市北区梅田1-1".into(),
            name: "山田 花子".into(),
            card_number: "1234567890135".into(),
            auth_pin: "1357".into(),
            sign_pin: None,
        },
    ];
    let file = dir.path().join("pins.pdf");
    write(&file, pdf::pin_mailers(&font, &office(), &mailers).unwrap());
    let text = text_of(&file);
    assert_eq!(text.matches("暗証番号通知書").count(), 2);
    assert!(text.contains("山田 太郎 様") && text.contains("〒100-0001"));
    assert!(text.contains("2580") && text.contains("ABCD2345"));
    assert!(
        text.contains("15歳未満"),
        "the minor's mailer says why there is no signing PIN"
    );
    assert_eq!(render(&file, 72).len(), 2);
    fonts_embedded_as_subset(&file);

    let notices = vec![CounterNotice {
        postal_code: "1000001".into(),
        address: "東京都千代田区千代田1-1".into(),
        name: "山田 太郎".into(),
        application: "KF-ABCDE-FGHJK".into(),
        card_number: "1234567890128".into(),
    }];
    let file = dir.path().join("notice.pdf");
    write(
        &file,
        pdf::counter_notices(&font, &office(), &notices).unwrap(),
    );
    let text = text_of(&file);
    assert!(text.contains("交付通知書") && text.contains("山田 太郎 様"));
    assert!(text.contains("KF-ABCDE-FGHJK") && text.contains("本人確認書類"));
    let pages = render(&file, 300);
    assert_eq!(barcodes(&pages[0]), vec!["1234567890128".to_string()]);
}
