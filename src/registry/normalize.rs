//! Normalisation of the four basic fields and the per-field verdict (SPEC §2.2): `exact`
//! when the two sides are the same text, `equivalent` when they differ only in width, kana
//! form, address notation (1-2-3 / 一丁目2番3号) or kanji variants (髙/高, 﨑/崎), and
//! `mismatch` otherwise.

use crate::jp::{fold, kana, kanji_number};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;

/// A field's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Identical.
    Exact,
    /// The same after normalisation.
    Equivalent,
    /// Different.
    Mismatch,
}

impl Verdict {
    /// Japanese label for the clerk's screen.
    pub fn label_ja(self) -> &'static str {
        match self {
            Verdict::Exact => "一致",
            Verdict::Equivalent => "同一（表記ゆれ）",
            Verdict::Mismatch => "不一致",
        }
    }
}

/// The variant table shipped as data (src/registry/kanji_variants.tsv).
static VARIANTS: LazyLock<HashMap<char, char>> = LazyLock::new(|| {
    include_str!("kanji_variants.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut it = l.split('\t');
            let v = it.next()?.nfkc().next()?;
            let s = it.next()?.trim().chars().next()?;
            Some((v, s))
        })
        .collect()
});

fn variants(s: &str) -> String {
    s.chars()
        .map(|c| VARIANTS.get(&c).copied().unwrap_or(c))
        .collect()
}

fn nfc_trim(s: &str) -> String {
    s.trim().nfc().collect()
}

/// Comparison key of a name: NFKC, no spaces, kanji variants folded, kana folded.
pub fn name_key(s: &str) -> String {
    let f = variants(&fold(s));
    if f.chars()
        .all(|c| matches!(c, 'ァ'..='ヺ' | 'ー' | '・' | 'ぁ'..='ゖ'))
    {
        kana::key(&f)
    } else {
        f
    }
}

const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

const KANJI_DIGITS: &str = "〇一二三四五六七八九十百千";
const MARKERS: [(&str, &str); 4] = [("丁目", "-"), ("番地", "-"), ("番", "-"), ("号", "")];

/// Comparison key of an address: NFKC, no spaces, no prefecture (applicants are compared
/// within one municipality), kanji variants folded, ヶ/ケ alike, and 一丁目2番3号 / 1-2-3 /
/// 1の2の3 all written 1-2-3.
pub fn address_key(s: &str) -> String {
    let mut f = variants(&fold(s)).replace('ヶ', "ケ");
    for p in PREFECTURES {
        if let Some(rest) = f.strip_prefix(p) {
            f = rest.to_string();
            break;
        }
    }
    let chars: Vec<char> = f.chars().collect();
    let mut out = String::with_capacity(f.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // A run of digits (Arabic or kanji) followed by a block marker becomes "N-".
        let run_end = chars[i..]
            .iter()
            .position(|ch| !(ch.is_ascii_digit() || KANJI_DIGITS.contains(*ch)))
            .map_or(chars.len(), |p| i + p);
        if run_end > i {
            let run: String = chars[i..run_end].iter().collect();
            let after: String = chars[run_end..].iter().take(2).collect();
            let marker = MARKERS.iter().find(|(m, _)| after.starts_with(m));
            let all_ascii = run.chars().all(|ch| ch.is_ascii_digit());
            if let (Some((m, rep)), Some(n)) = (marker, kanji_number(&run)) {
                out.push_str(&n.to_string());
                out.push_str(rep);
                i = run_end + m.chars().count();
                continue;
            }
            if all_ascii {
                out.push_str(&run);
                i = run_end;
                continue;
            }
            // Kanji numerals that are part of a place name (八王子, 四日市) stay.
            out.push_str(&run);
            i = run_end;
            continue;
        }
        let prev_digit = out.chars().last().is_some_and(|p| p.is_ascii_digit());
        let next_digit = chars
            .get(i + 1)
            .is_some_and(|n| n.is_ascii_digit() || KANJI_DIGITS.contains(*n));
        match c {
            '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | 'ー' | '-' if prev_digit => {
                out.push('-')
            }
            'の' | 'ノ' if prev_digit && next_digit => out.push('-'),
            _ => out.push(c),
        }
        i += 1;
    }
    let mut collapsed = String::with_capacity(out.len());
    for c in out.chars() {
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    collapsed.trim_end_matches('-').to_string()
}

fn verdict(a: &str, b: &str, key: impl Fn(&str) -> String) -> Verdict {
    if nfc_trim(a) == nfc_trim(b) {
        Verdict::Exact
    } else if key(a) == key(b) {
        Verdict::Equivalent
    } else {
        Verdict::Mismatch
    }
}

/// Name (kanji or as registered).
pub fn compare_name(a: &str, b: &str) -> Verdict {
    verdict(a, b, name_key)
}

/// Kana name.
pub fn compare_kana(a: &str, b: &str) -> Verdict {
    verdict(a, b, kana::key)
}

/// Address.
pub fn compare_address(a: &str, b: &str) -> Verdict {
    verdict(a, b, address_key)
}

/// Values with no notation to normalise (date of birth, sex).
pub fn compare_value<T: PartialEq>(a: &T, b: &T) -> Verdict {
    if a == b {
        Verdict::Exact
    } else {
        Verdict::Mismatch
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::{Equivalent as Eq, Exact as Ex, Mismatch as Mi};
    use super::*;

    #[test]
    fn verdict_table() {
        type Cmp = fn(&str, &str) -> Verdict;
        let name: Cmp = compare_name;
        let kana: Cmp = compare_kana;
        let addr: Cmp = compare_address;
        let cases: &[(&str, Cmp, &str, &str, Verdict)] = &[
            ("same name", name, "山田 太郎", "山田 太郎", Ex),
            ("surrounding spaces", name, " 山田 太郎 ", "山田 太郎", Ex),
            ("full-width space", name, "山田　太郎", "山田 太郎", Eq),
            ("no space", name, "山田太郎", "山田 太郎", Eq),
            ("髙/高", name, "髙橋 一郎", "高橋 一郎", Eq),
            ("﨑/崎", name, "山﨑 花子", "山崎 花子", Eq),
            // From OpenCC's Japanese data (the table's second part).
            ("巢/巣", name, "巢鴨 一郎", "巣鴨 一郎", Eq),
            ("櫻/桜", name, "櫻井 翔子", "桜井 翔子", Eq),
            ("學/学", addr, "文京区大學町1-1", "文京区大学町1-1", Eq),
            // A chain closed by the table: 齋 → 斎 (OpenCC) and 斎 → 斉 (the consortium's).
            ("齋/斎", name, "齋藤 一", "斎藤 一", Eq),
            ("齋/斉", name, "齋藤 一", "斉藤 一", Eq),
            ("different kanji", name, "桜井 翔子", "松井 翔子", Mi),
            ("嵜/崎", name, "山嵜 花子", "山崎 花子", Eq),
            ("齋/斎", name, "齋藤 健", "斎藤 健", Eq),
            ("齊/斉", name, "齊藤 健", "斉藤 健", Eq),
            ("斉/齋", name, "斉藤 健", "齋藤 健", Eq),
            ("邊/辺", name, "渡邊 真", "渡辺 真", Eq),
            ("邉/邊", name, "渡邉 真", "渡邊 真", Eq),
            ("澤/沢", name, "澤田 亮", "沢田 亮", Eq),
            // U+FA10 has a canonical decomposition: the same text once NFC-normalised.
            ("compat 塚", name, "大\u{FA10} 学", "大塚 学", Ex),
            ("𠮷/吉", name, "𠮷田 茂", "吉田 茂", Eq),
            ("different surname", name, "山田 太郎", "山本 太郎", Mi),
            ("different given name", name, "佐藤 花子", "佐藤 華子", Mi),
            ("katakana name width", name, "ｽﾐｽ ｼﾞｮﾝ", "スミス ジョン", Eq),
            ("latin width", name, "ＳＭＩＴＨ ＪＯＨＮ", "SMITH JOHN", Eq),
            ("kana same", kana, "ヤマダ タロウ", "ヤマダ タロウ", Ex),
            ("ｶﾅ/カナ", kana, "ｶﾅ", "カナ", Eq),
            ("half-width dakuten", kana, "ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ タロウ", Eq),
            ("hiragana", kana, "やまだ たろう", "ヤマダ タロウ", Eq),
            ("small kana", kana, "キャンディ", "キヤンデイ", Eq),
            ("ヂ/ジ", kana, "ハナヂ", "ハナジ", Eq),
            ("ヅ/ズ", kana, "ミカヅキ", "ミカズキ", Eq),
            ("ヲ/オ", kana, "ヲノ", "オノ", Eq),
            ("ヴ/ブ", kana, "ヴィクター", "ビクター", Mi),
            ("long vowel", kana, "オーノ", "オノ", Eq),
            ("kana differ", kana, "サトウ", "サイトウ", Mi),
            (
                "address same",
                addr,
                "東京都千代田区千代田1-1",
                "東京都千代田区千代田1-1",
                Ex,
            ),
            (
                "1-2-3 / 一丁目2番3号",
                addr,
                "千代田区丸の内1-2-3",
                "千代田区丸の内一丁目2番3号",
                Eq,
            ),
            (
                "丁目 with arabic",
                addr,
                "千代田区丸の内1丁目2番3号",
                "千代田区丸の内1-2-3",
                Eq,
            ),
            (
                "番地",
                addr,
                "千代田区丸の内1丁目2番地3",
                "千代田区丸の内1-2-3",
                Eq,
            ),
            ("kanji tens", addr, "港区芝二十三番5号", "港区芝23-5", Eq),
            (
                "full-width digits",
                addr,
                "千代田区丸の内１－２－３",
                "千代田区丸の内1-2-3",
                Eq,
            ),
            (
                "katakana long-vowel as hyphen",
                addr,
                "千代田区丸の内1ー2ー3",
                "千代田区丸の内1-2-3",
                Eq,
            ),
            (
                "の as separator",
                addr,
                "中央区銀座1の2の3",
                "中央区銀座1-2-3",
                Eq,
            ),
            (
                "prefecture omitted",
                addr,
                "東京都千代田区丸の内1-2-3",
                "千代田区丸の内1-2-3",
                Eq,
            ),
            (
                "spaces",
                addr,
                "千代田区 丸の内 1-2-3",
                "千代田区丸の内1-2-3",
                Eq,
            ),
            ("ヶ/ケ", addr, "千代田区霞ヶ関1-1", "千代田区霞ケ関1-1", Eq),
            (
                "place-name numerals kept",
                addr,
                "八王子市八日町1-1",
                "8王子市8日町1-1",
                Mi,
            ),
            (
                "different block",
                addr,
                "千代田区丸の内1-2-3",
                "千代田区丸の内1-2-4",
                Mi,
            ),
            (
                "different town",
                addr,
                "千代田区丸の内1-2-3",
                "千代田区大手町1-2-3",
                Mi,
            ),
            (
                "variant in address",
                addr,
                "大阪府大阪市北区曾根崎1-1",
                "大阪市北区曽根崎1-1",
                Eq,
            ),
        ];
        assert!(cases.len() >= 40);
        for (what, cmp, a, b, want) in cases {
            assert_eq!(
                cmp(a, b),
                *want,
                "{what}: {a:?} vs {b:?} (keys {:?} / {:?})",
                address_key(a),
                address_key(b)
            );
        }
        assert_eq!(compare_value(&"1", &"1"), Ex);
        assert_eq!(compare_value(&1, &2), Mi);
    }
}
