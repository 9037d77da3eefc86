//! Kana names: half-width katakana and hiragana are accepted and stored as full-width
//! katakana; a looser key folds the variants that registries and forms disagree on.

use crate::jp::fold;
use unicode_normalization::UnicodeNormalization;

/// To full-width katakana: NFKC (half-width → full-width, ｶﾞ → ガ), hiragana → katakana,
/// runs of white space to one ideographic-width space.
pub fn to_katakana(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.nfkc() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push('\u{3000}');
            space = false;
        }
        out.push(match c {
            'ぁ'..='ゖ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            'ゝ' => 'ヽ',
            'ゞ' => 'ヾ',
            _ => c,
        });
    }
    out
}

/// Check a kana name: after conversion only katakana, the long-vowel mark, the middle dot
/// and spaces remain.
pub fn check_name(s: &str) -> Result<String, String> {
    let k = to_katakana(s);
    if k.is_empty() {
        return Err("フリガナが空です".into());
    }
    if let Some(bad) = k
        .chars()
        .find(|c| !matches!(c, 'ァ'..='ヺ' | 'ー' | '・' | 'ヽ' | 'ヾ' | '\u{3000}'))
    {
        return Err(format!(
            "フリガナに使えない文字 {bad:?} があります（カタカナまたはひらがなで入力してください）"
        ));
    }
    Ok(k)
}

/// Comparison key: katakana without spaces or dots, small kana as large, ヂ/ヅ/ヲ/ヴ as
/// ジ/ズ/オ/ブ, and long-vowel marks dropped.
pub fn key(s: &str) -> String {
    fold(&to_katakana(s))
        .chars()
        .filter(|c| !matches!(c, '・' | 'ー' | '\u{3000}'))
        .map(|c| match c {
            'ァ' => 'ア',
            'ィ' => 'イ',
            'ゥ' => 'ウ',
            'ェ' => 'エ',
            'ォ' => 'オ',
            'ッ' => 'ツ',
            'ャ' => 'ヤ',
            'ュ' => 'ユ',
            'ョ' => 'ヨ',
            'ヮ' => 'ワ',
            'ヵ' => 'カ',
            'ヶ' => 'ケ',
            'ヂ' => 'ジ',
            'ヅ' => 'ズ',
            'ヲ' => 'オ',
            'ヴ' => 'ブ',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion() {
        assert_eq!(to_katakana("ﾔﾏﾀﾞ ﾀﾛｳ"), "ヤマダ\u{3000}タロウ");
        assert_eq!(to_katakana("やまだ　たろう"), "ヤマダ\u{3000}タロウ");
        assert_eq!(check_name("ﾔﾏﾀﾞ").as_deref(), Ok("ヤマダ"));
        assert!(check_name("山田").is_err());
        assert!(check_name("   ").is_err());
        assert_eq!(key("キャンディー"), key("キヤンデイ"));
        assert_eq!(key("ヂュウ"), key("ジユウ"));
        assert_ne!(key("サトウ"), key("サイトウ"));
    }
}
