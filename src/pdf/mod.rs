//! Printed documents of delivery (SPEC §2.5), from plain data: mailing labels for
//! restricted-delivery mail (本人限定受取郵便) on A4 sheets of ten or one per page for a label
//! printer, PIN mailers (暗証番号通知書) sent separately from the card, and counter-pickup
//! notices (交付通知書). The Japanese font (IPAex Gothic by default) is embedded as a subset.

pub mod code128;

use crate::error::{Error, Result};
use printpdf::{
    Color, FontId, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point,
    Pt, Rect, Rgb, TextItem, graphics::PaintMode,
};
use std::path::Path;

/// The font documents are set in, parsed once.
pub struct Font {
    parsed: ParsedFont,
}

impl Font {
    /// Load a TrueType/OpenType font.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::Config(format!(
                "cannot read the document font {}: {e} (install fonts-ipaexfont-gothic or set delivery.font)",
                path.display()
            ))
        })?;
        let parsed = ParsedFont::from_bytes(&bytes, 0, &mut Vec::new())
            .ok_or_else(|| Error::Config(format!("{} is not a usable font", path.display())))?;
        Ok(Font { parsed })
    }
}

/// The consortium office as it appears on documents (return address, contact, counter).
#[derive(Debug, Clone)]
pub struct Office {
    /// Name.
    pub name: String,
    /// Postal code, 7 digits.
    pub postal_code: String,
    /// Address.
    pub address: String,
    /// Telephone.
    pub phone: String,
    /// Counter opening hours.
    pub counter_hours: String,
}

/// One restricted-delivery mailing label.
#[derive(Debug, Clone)]
pub struct MailLabel {
    /// Postal code, 7 digits.
    pub postal_code: String,
    /// Address.
    pub address: String,
    /// Name.
    pub name: String,
    /// The card reference on the barcode (the card number).
    pub reference: String,
}

/// One PIN mailer.
#[derive(Debug, Clone)]
pub struct PinMailer {
    /// Postal code, 7 digits.
    pub postal_code: String,
    /// Address.
    pub address: String,
    /// Name.
    pub name: String,
    /// Card number.
    pub card_number: String,
    /// Authentication PIN (4 digits).
    pub auth_pin: String,
    /// Signing password, when the card has a signing certificate.
    pub sign_pin: Option<String>,
}

/// One counter-pickup notice.
#[derive(Debug, Clone)]
pub struct CounterNotice {
    /// Postal code, 7 digits.
    pub postal_code: String,
    /// Address.
    pub address: String,
    /// Name.
    pub name: String,
    /// Application reference.
    pub application: String,
    /// Card number (barcode for the counter).
    pub card_number: String,
}

/// `〒123-4567`.
fn postal(code: &str) -> String {
    if code.len() == 7 {
        format!("〒{}-{}", &code[..3], &code[3..])
    } else {
        format!("〒{code}")
    }
}

/// A page being drawn: operations and the font.
struct Canvas {
    ops: Vec<Op>,
    font: FontId,
}

/// Width of `c` in ems (half-width ASCII and kana, full-width otherwise).
fn em(c: char) -> f32 {
    if c.is_ascii() || ('\u{ff61}'..='\u{ff9f}').contains(&c) {
        0.5
    } else {
        1.0
    }
}

/// Break `text` into lines no wider than `width_mm` at `size` points.
fn wrap(text: &str, size: f32, width_mm: f32) -> Vec<String> {
    let em_mm = size * 0.3528;
    let mut lines = vec![String::new()];
    let mut used = 0.0;
    for c in text.chars() {
        let w = em(c) * em_mm;
        if used + w > width_mm && !lines.last().is_some_and(String::is_empty) {
            lines.push(String::new());
            used = 0.0;
        }
        if let Some(l) = lines.last_mut() {
            l.push(c);
        }
        used += w;
    }
    lines
}

impl Canvas {
    fn new(font: FontId) -> Self {
        Canvas {
            ops: Vec::new(),
            font,
        }
    }

    /// Text with its baseline's left end at (x, y) mm from the bottom left.
    fn text(&mut self, x: f32, y: f32, size: f32, s: &str) {
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::External(self.font.clone()),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point::new(Mm(x), Mm(y)),
            },
            Op::ShowText {
                items: vec![TextItem::Text(s.to_string())],
            },
            Op::EndTextSection,
        ]);
    }

    /// Wrapped text from (x, y) downwards; returns the y below the last line.
    fn paragraph(&mut self, x: f32, y: f32, size: f32, width: f32, s: &str) -> f32 {
        let mut y = y;
        for line in wrap(s, size, width) {
            self.text(x, y, size, &line);
            y -= size * 0.3528 * 1.4;
        }
        y
    }

    fn colour(&mut self, r: f32, g: f32, b: f32) {
        let col = Color::Rgb(Rgb {
            r,
            g,
            b,
            icc_profile: None,
        });
        self.ops.push(Op::SetFillColor { col: col.clone() });
        self.ops.push(Op::SetOutlineColor { col });
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, mode: PaintMode) {
        let mut r = Rect::from_xywh(Mm(x).into(), Mm(y).into(), Mm(w).into(), Mm(h).into());
        r.mode = Some(mode);
        self.ops.push(Op::DrawRectangle { rectangle: r });
    }

    /// A Code 128 barcode of `value`, `module` mm per module, with the value printed below.
    fn barcode(&mut self, x: f32, y: f32, height: f32, module: f32, value: &str) -> Result<()> {
        let (bars, width) = code128::bars(value)?;
        self.colour(0.0, 0.0, 0.0);
        for (at, w) in bars {
            self.rect(
                x + at as f32 * module,
                y,
                w as f32 * module,
                height,
                PaintMode::Fill,
            );
        }
        let text_width = value.len() as f32 * 7.0 * 0.3528 * 0.5;
        self.text(
            x + (width as f32 * module - text_width) / 2.0,
            y - 3.0,
            7.0,
            value,
        );
        Ok(())
    }
}

/// Width and height of a label: A4 in two columns of five.
const LABEL_W: f32 = 105.0;
const LABEL_H: f32 = 59.4;

/// Draw one label with its bottom left corner at (x, y).
fn draw_label(c: &mut Canvas, x: f32, y: f32, office: &Office, l: &MailLabel) -> Result<()> {
    let top = y + LABEL_H;
    c.colour(0.0, 0.0, 0.0);
    c.text(x + 7.0, top - 10.0, 12.0, &postal(&l.postal_code));
    let below = c.paragraph(x + 7.0, top - 17.0, 10.5, 62.0, &l.address);
    c.text(
        x + 7.0,
        below.min(top - 30.0) - 4.0,
        15.0,
        &format!("{} 様", l.name),
    );
    // The marking the post office acts on: red, boxed, top right.
    c.colour(0.8, 0.0, 0.0);
    c.ops.push(Op::SetOutlineThickness { pt: Pt(1.2) });
    c.rect(x + LABEL_W - 33.0, top - 14.0, 27.0, 8.0, PaintMode::Stroke);
    c.text(x + LABEL_W - 31.0, top - 11.6, 10.0, "本人限定受取");
    c.barcode(x + 7.0, y + 8.0, 9.0, 0.25, &l.reference)?;
    c.colour(0.0, 0.0, 0.0);
    c.text(x + 56.0, y + 17.0, 6.5, &format!("差出人 {}", office.name));
    c.text(x + 56.0, y + 13.5, 6.5, &postal(&office.postal_code));
    c.paragraph(x + 56.0, y + 10.0, 6.5, 44.0, &office.address);
    Ok(())
}

fn save(doc: &mut PdfDocument, pages: Vec<PdfPage>) -> Vec<u8> {
    doc.with_pages(pages).save(
        &PdfSaveOptions {
            subset_fonts: true,
            ..PdfSaveOptions::default()
        },
        &mut Vec::new(),
    )
}

fn document(font: &Font, title: &str) -> (PdfDocument, FontId) {
    let mut doc = PdfDocument::new(title);
    let id = doc.add_font(&font.parsed);
    (doc, id)
}

/// A4 sheets of ten labels (two columns of five), in order.
pub fn label_sheets(font: &Font, office: &Office, labels: &[MailLabel]) -> Result<Vec<u8>> {
    let (mut doc, id) = document(font, "本人限定受取郵便 宛名ラベル");
    let mut pages = Vec::new();
    for sheet in labels.chunks(10) {
        let mut c = Canvas::new(id.clone());
        for (i, l) in sheet.iter().enumerate() {
            let col = (i % 2) as f32;
            let row = (i / 2) as f32;
            draw_label(
                &mut c,
                col * LABEL_W,
                297.0 - (row + 1.0) * LABEL_H,
                office,
                l,
            )?;
        }
        pages.push(PdfPage::new(Mm(210.0), Mm(297.0), c.ops));
    }
    Ok(save(&mut doc, pages))
}

/// One label per page, the page the size of the label (for label printers).
pub fn single_labels(font: &Font, office: &Office, labels: &[MailLabel]) -> Result<Vec<u8>> {
    let (mut doc, id) = document(font, "本人限定受取郵便 宛名ラベル");
    let mut pages = Vec::new();
    for l in labels {
        let mut c = Canvas::new(id.clone());
        draw_label(&mut c, 0.0, 0.0, office, l)?;
        pages.push(PdfPage::new(Mm(LABEL_W), Mm(LABEL_H), c.ops));
    }
    Ok(save(&mut doc, pages))
}

/// The address block of a letter, where a window envelope shows it.
fn letter_head(c: &mut Canvas, postal_code: &str, address: &str, name: &str) {
    c.colour(0.0, 0.0, 0.0);
    c.text(25.0, 262.0, 11.0, &postal(postal_code));
    let y = c.paragraph(25.0, 255.0, 11.0, 85.0, address);
    c.text(25.0, y - 4.0, 14.0, &format!("{name} 様"));
}

fn letter_foot(c: &mut Canvas, office: &Office) {
    c.text(25.0, 40.0, 10.0, &office.name);
    c.text(
        25.0,
        34.0,
        9.0,
        &format!("{} {}", postal(&office.postal_code), office.address),
    );
    c.text(25.0, 28.0, 9.0, &format!("電話 {}", office.phone));
}

/// PIN mailers (暗証番号通知書), one A4 page per card.
pub fn pin_mailers(font: &Font, office: &Office, mailers: &[PinMailer]) -> Result<Vec<u8>> {
    let (mut doc, id) = document(font, "暗証番号通知書");
    let mut pages = Vec::new();
    for m in mailers {
        let mut c = Canvas::new(id.clone());
        letter_head(&mut c, &m.postal_code, &m.address, &m.name);
        c.text(70.0, 200.0, 20.0, "暗証番号通知書");
        c.text(
            25.0,
            185.0,
            11.0,
            &format!(
                "カード番号  {}",
                crate::card::number::display(&m.card_number)
            ),
        );
        c.text(
            25.0,
            172.0,
            11.0,
            "利用者証明用電子証明書の暗証番号（数字4桁）",
        );
        c.text(30.0, 162.0, 18.0, &m.auth_pin);
        match &m.sign_pin {
            Some(p) => {
                c.text(
                    25.0,
                    149.0,
                    11.0,
                    "署名用電子証明書の暗証番号（英数字6〜16文字）",
                );
                c.text(30.0, 139.0, 18.0, p);
            }
            None => {
                c.text(
                    25.0,
                    149.0,
                    11.0,
                    "署名用電子証明書は、15歳未満のため発行していません。",
                );
            }
        }
        c.paragraph(
            25.0,
            120.0,
            10.0,
            160.0,
            "この通知書はカードとは別に郵送しています。暗証番号は他人に知られないよう大切に保管し、カードと一緒に持ち歩かないでください。\
             暗証番号を続けて誤るとカードが使えなくなります。その場合は窓口で再設定してください。",
        );
        letter_foot(&mut c, office);
        pages.push(PdfPage::new(Mm(210.0), Mm(297.0), c.ops));
    }
    Ok(save(&mut doc, pages))
}

/// Counter-pickup notices (交付通知書), one A4 page per card.
pub fn counter_notices(font: &Font, office: &Office, notices: &[CounterNotice]) -> Result<Vec<u8>> {
    let (mut doc, id) = document(font, "交付通知書");
    let mut pages = Vec::new();
    for n in notices {
        let mut c = Canvas::new(id.clone());
        letter_head(&mut c, &n.postal_code, &n.address, &n.name);
        c.text(55.0, 200.0, 20.0, "交付通知書（窓口受取）");
        c.paragraph(
            25.0,
            185.0,
            11.0,
            160.0,
            "お申し込みのカードの準備ができました。この通知書と本人確認書類（運転免許証、旅券など）をお持ちのうえ、ご本人が窓口にお越しください。",
        );
        c.text(25.0, 160.0, 11.0, &format!("受付番号  {}", n.application));
        c.text(
            25.0,
            152.0,
            11.0,
            &format!(
                "カード番号  {}",
                crate::card::number::display(&n.card_number)
            ),
        );
        c.text(
            25.0,
            140.0,
            11.0,
            &format!("窓口  {} {}", office.name, office.address),
        );
        c.text(
            25.0,
            132.0,
            11.0,
            &format!("受付時間  {}", office.counter_hours),
        );
        c.barcode(25.0, 110.0, 12.0, 0.33, &n.card_number)?;
        letter_foot(&mut c, office);
        pages.push(PdfPage::new(Mm(210.0), Mm(297.0), c.ops));
    }
    Ok(save(&mut doc, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_addresses_wrap_and_postal_codes_read_as_written() {
        let lines = wrap(
            "東京都千代田区千代田一丁目1番1号 千代田マンション101号室",
            10.0,
            40.0,
        );
        assert!(lines.len() > 1);
        assert!(
            lines
                .iter()
                .all(|l| l.chars().map(em).sum::<f32>() * 3.528 <= 40.5)
        );
        assert_eq!(postal("1000001"), "〒100-0001");
    }
}
